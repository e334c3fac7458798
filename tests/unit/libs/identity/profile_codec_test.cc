#include "libs/identity/profile_codec.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "libs/common/time_util.h"
#include "libs/identity/merged.h"
#include "libs/redis/reply.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// An HGETALL reply: a flat array of field, value strings.
redis::Reply Hash(const Fields& fields) {
  redis::Reply r;
  r.type = redis::Reply::Type::kArray;
  for (const auto& [field, value] : fields) {
    for (const std::string* s : {&field, &value}) {
      redis::Reply e;
      e.type = redis::Reply::Type::kString;
      e.str = *s;
      r.elements.push_back(std::move(e));
    }
  }
  return r;
}

redis::Reply EmptyHash() { return Hash({}); }

v1::Identifier Id(v1::IdentifierType type, absl::string_view value) {
  v1::Identifier id;
  id.set_type(type);
  id.set_value(std::string(value));
  return id;
}

// ---------------------------------------------------------------------------------------------
// IdentifierField

TEST(IdentifierFieldTest, IsTypeNameColonValue) {
  EXPECT_EQ(IdentifierField(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100")), "phone:14155550100");
  EXPECT_EQ(IdentifierField(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")),
            "email:ann@example.com");
  EXPECT_EQ(IdentifierField(Id(v1::IDENTIFIER_TYPE_SOCIAL_HANDLE, "twitter:ann")),
            "social:twitter:ann");
}

// ---------------------------------------------------------------------------------------------
// ProfileFromHashes

TEST(ProfileFromHashesTest, EmptyHashesGiveOnlyTheCustomerId) {
  v1::Profile p = ProfileFromHashes("cus_1", EmptyHash(), EmptyHash());
  v1::Profile expected;
  expected.set_customer_id("cus_1");
  EXPECT_EQ(p.SerializeAsString(), expected.SerializeAsString()) << p.DebugString();
}

TEST(ProfileFromHashesTest, NilRepliesGiveOnlyTheCustomerId) {
  v1::Profile p = ProfileFromHashes("cus_1", redis::Reply(), redis::Reply());
  v1::Profile expected;
  expected.set_customer_id("cus_1");
  EXPECT_EQ(p.SerializeAsString(), expected.SerializeAsString()) << p.DebugString();
}

TEST(ProfileFromHashesTest, ScalarFields) {
  v1::Profile p = ProfileFromHashes(
      "cus_1", Hash({{"display_name", "Ann Lee"}, {"language", "pt-BR"}, {"tier", "gold"}}),
      EmptyHash());
  EXPECT_EQ(p.customer_id(), "cus_1");
  EXPECT_EQ(p.display_name(), "Ann Lee");
  EXPECT_EQ(p.language(), "pt-BR");
  EXPECT_EQ(p.tier(), "gold");
}

TEST(ProfileFromHashesTest, CreatedAndUpdatedAtAreMilliseconds) {
  v1::Profile p = ProfileFromHashes(
      "cus_1", Hash({{"created_at", "1700000000123"}, {"updated_at", "1700000005000"}}),
      EmptyHash());
  ASSERT_TRUE(p.has_created_at());
  EXPECT_EQ(p.created_at().seconds(), 1700000000);
  EXPECT_EQ(p.created_at().nanos(), 123000000);
  ASSERT_TRUE(p.has_updated_at());
  EXPECT_EQ(ToMillis(p.updated_at()), 1700000005000);
}

TEST(ProfileFromHashesTest, MalformedTimestampsAreLeftUnset) {
  v1::Profile p = ProfileFromHashes(
      "cus_1", Hash({{"created_at", "yesterday"}, {"updated_at", ""}}), EmptyHash());
  EXPECT_FALSE(p.has_created_at());
  EXPECT_FALSE(p.has_updated_at());
}

TEST(ProfileFromHashesTest, Attributes) {
  v1::Profile p = ProfileFromHashes(
      "cus_1",
      Hash({{"attr:color", "blue"}, {"attr:city", "Lisbon"}, {"attr:a:b", "colon in key"}}),
      EmptyHash());
  ASSERT_EQ(p.attributes_size(), 3);
  EXPECT_EQ(p.attributes().at("color"), "blue");
  EXPECT_EQ(p.attributes().at("city"), "Lisbon");
  EXPECT_EQ(p.attributes().at("a:b"), "colon in key");
}

TEST(ProfileFromHashesTest, ConsentsAreParsedAndSortedByChannel) {
  v1::Profile p = ProfileFromHashes("cus_1",
                                    Hash({
                                        {"consent:5", "2:1700000002000"},  // EMAIL, DENIED
                                        {"consent:1", "1:1700000001000"},  // WEB_CHAT, GRANTED
                                        {"consent:4", "1:1700000003500"},  // SMS, GRANTED
                                    }),
                                    EmptyHash());
  ASSERT_EQ(p.consents_size(), 3);
  EXPECT_EQ(p.consents(0).channel(), v1::CHANNEL_WEB_CHAT);
  EXPECT_EQ(p.consents(0).state(), v1::CONSENT_STATE_GRANTED);
  EXPECT_EQ(ToMillis(p.consents(0).updated_at()), 1700000001000);
  EXPECT_EQ(p.consents(1).channel(), v1::CHANNEL_SMS);
  EXPECT_EQ(p.consents(1).state(), v1::CONSENT_STATE_GRANTED);
  EXPECT_EQ(ToMillis(p.consents(1).updated_at()), 1700000003500);
  EXPECT_EQ(p.consents(2).channel(), v1::CHANNEL_EMAIL);
  EXPECT_EQ(p.consents(2).state(), v1::CONSENT_STATE_DENIED);
  EXPECT_EQ(ToMillis(p.consents(2).updated_at()), 1700000002000);
}

TEST(ProfileFromHashesTest, MalformedConsentsAreSkipped) {
  v1::Profile p = ProfileFromHashes("cus_1",
                                    Hash({
                                        {"consent:1", "1"},                  // no ':'
                                        {"consent:2", "x:1700000000000"},    // state not a number
                                        {"consent:3", "1:soon"},             // ms not a number
                                        {"consent:sms", "1:1700000000000"},  // channel not a number
                                        {"consent:", "1:1700000000000"},     // no channel
                                        {"consent:4", ""},                   // empty
                                        {"consent:9", "2:1700000000000"},    // the one good entry
                                    }),
                                    EmptyHash());
  ASSERT_EQ(p.consents_size(), 1) << p.DebugString();
  EXPECT_EQ(p.consents(0).channel(), v1::CHANNEL_SOCIAL);
  EXPECT_EQ(p.consents(0).state(), v1::CONSENT_STATE_DENIED);
}

TEST(ProfileFromHashesTest, UnknownFieldsAreIgnored) {
  v1::Profile p = ProfileFromHashes("cus_1",
                                    Hash({
                                        {"act:1", "1700000000000"},
                                        {"merged_into", "cus_9"},
                                        {"customer_id", "cus_evil"},
                                        {"Display_Name", "wrong case"},
                                        {"display_name", "Ann"},
                                    }),
                                    EmptyHash());
  v1::Profile expected;
  expected.set_customer_id("cus_1");
  expected.set_display_name("Ann");
  EXPECT_EQ(p.SerializeAsString(), expected.SerializeAsString()) << p.DebugString();
}

TEST(ProfileFromHashesTest, AnOddTrailingFieldIsIgnored) {
  redis::Reply hash = Hash({{"display_name", "Ann"}});
  redis::Reply dangling;
  dangling.type = redis::Reply::Type::kString;
  dangling.str = "tier";
  hash.elements.push_back(dangling);
  v1::Profile p = ProfileFromHashes("cus_1", hash, EmptyHash());
  EXPECT_EQ(p.display_name(), "Ann");
  EXPECT_EQ(p.tier(), "");
}

TEST(ProfileFromHashesTest, IdentifiersAreSortedByTypeThenValue) {
  v1::Profile p = ProfileFromHashes("cus_1", EmptyHash(),
                                    Hash({
                                        {"social:twitter:ann", "1700000000004"},
                                        {"email:zed@example.com", "1700000000003"},
                                        {"phone:14155550100", "1700000000001"},
                                        {"email:ann@example.com", "1700000000002"},
                                        {"crm:SF-1", "1700000000005"},
                                        {"app:User-B", "1700000000006"},
                                        {"app:User-A", "1700000000007"},
                                    }));
  ASSERT_EQ(p.identifiers_size(), 7) << p.DebugString();
  struct Want {
    v1::IdentifierType type;
    std::string value;
    int64_t linked_at_ms;
  };
  const Want want[] = {
      {v1::IDENTIFIER_TYPE_PHONE, "14155550100", 1700000000001},
      {v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com", 1700000000002},
      {v1::IDENTIFIER_TYPE_EMAIL, "zed@example.com", 1700000000003},
      {v1::IDENTIFIER_TYPE_APP_USER_ID, "User-A", 1700000000007},
      {v1::IDENTIFIER_TYPE_APP_USER_ID, "User-B", 1700000000006},
      {v1::IDENTIFIER_TYPE_SOCIAL_HANDLE, "twitter:ann", 1700000000004},
      {v1::IDENTIFIER_TYPE_CRM_ID, "SF-1", 1700000000005},
  };
  for (int i = 0; i < p.identifiers_size(); ++i) {
    SCOPED_TRACE(i);
    const v1::LinkedIdentifier& li = p.identifiers(i);
    EXPECT_EQ(li.identifier().type(), want[i].type);
    EXPECT_EQ(li.identifier().value(), want[i].value);
    EXPECT_EQ(ToMillis(li.linked_at()), want[i].linked_at_ms);
  }
}

TEST(ProfileFromHashesTest, IdentifierFieldRoundTrips) {
  v1::Identifier id = Id(v1::IDENTIFIER_TYPE_SOCIAL_HANDLE, "twitter:ann");
  v1::Profile p =
      ProfileFromHashes("cus_1", EmptyHash(), Hash({{IdentifierField(id), "1700000000000"}}));
  ASSERT_EQ(p.identifiers_size(), 1);
  EXPECT_EQ(p.identifiers(0).identifier().SerializeAsString(), id.SerializeAsString());
}

TEST(ProfileFromHashesTest, IdentifierFieldWithoutColonIsSkipped) {
  v1::Profile p = ProfileFromHashes(
      "cus_1", EmptyHash(), Hash({{"garbage", "1"}, {"phone:14155550100", "1700000000000"}}));
  ASSERT_EQ(p.identifiers_size(), 1);
  EXPECT_EQ(p.identifiers(0).identifier().value(), "14155550100");
}

TEST(ProfileFromHashesTest, MalformedLinkedAtLeavesItUnset) {
  v1::Profile p =
      ProfileFromHashes("cus_1", EmptyHash(), Hash({{"phone:14155550100", "not a number"}}));
  ASSERT_EQ(p.identifiers_size(), 1);
  EXPECT_EQ(p.identifiers(0).identifier().type(), v1::IDENTIFIER_TYPE_PHONE);
  EXPECT_FALSE(p.identifiers(0).has_linked_at());
}

TEST(ProfileFromHashesTest, ProfileAndIdentifiersTogether) {
  v1::Profile p = ProfileFromHashes("cus_42",
                                    Hash({{"created_at", "1700000000000"},
                                          {"display_name", "Ann"},
                                          {"attr:vip", "yes"},
                                          {"consent:4", "1:1700000000500"}}),
                                    Hash({{"email:ann@example.com", "1700000000000"}}));
  EXPECT_EQ(p.customer_id(), "cus_42");
  EXPECT_EQ(p.display_name(), "Ann");
  EXPECT_EQ(p.attributes().at("vip"), "yes");
  ASSERT_EQ(p.consents_size(), 1);
  EXPECT_EQ(p.consents(0).channel(), v1::CHANNEL_SMS);
  ASSERT_EQ(p.identifiers_size(), 1);
  EXPECT_EQ(p.identifiers(0).identifier().value(), "ann@example.com");
  EXPECT_EQ(ToMillis(p.created_at()), 1700000000000);
}

TEST(EvidenceTest, RoundTripsEveryFieldAndReadsTheOldFormat) {
  v1::LinkEvidence e;
  e.set_channel(v1::CHANNEL_WEB_CHAT);
  e.set_verification(v1::VERIFICATION_AUTHENTICATED);
  e.mutable_linked_by()->set_type(v1::Actor::TYPE_AGENT);
  e.mutable_linked_by()->set_id("agent|with|bars");
  *e.mutable_first_seen() = FromMillis(1000);
  *e.mutable_last_seen() = FromMillis(2000);
  e.set_merge_id("mrg_1");
  e.set_merged_from("cus_2");
  v1::LinkEvidence back;
  ASSERT_TRUE(DecodeEvidence(EncodeEvidence(e), &back));
  EXPECT_EQ(back.SerializeAsString(), e.SerializeAsString());

  v1::LinkEvidence old;
  ASSERT_TRUE(DecodeEvidence("1700000000000", &old));  // linked_at ms, before evidence
  EXPECT_EQ(ToMillis(old.first_seen()), 1700000000000);
  EXPECT_EQ(old.verification(), v1::VERIFICATION_UNVERIFIED);
  EXPECT_FALSE(DecodeEvidence("v2|1|2", &old));
  EXPECT_FALSE(DecodeEvidence("v3|1|2|3|4|5|||", &old));
}

// GuardRead answers as os_guard does for a read (merged.h), so FollowMerges and callers see the
// same statuses whether the guard ran in a function or on a snapshot.
TEST(GuardReadTest, UnknownCustomerIsNotFound) {
  absl::Status st = GuardRead("cus_1", Hash({}));
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "customer cus_1 not found");
}

TEST(GuardReadTest, ErasedCustomerSaysSo) {
  absl::Status st = GuardRead("cus_1", Hash({{"erased_at", "1700000000000"}}));
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "customer cus_1 was erased");
}

TEST(GuardReadTest, MergedCustomerAnswersWhereItWent) {
  absl::Status st = GuardRead("cus_1", Hash({{"created_at", "1"},
                                             {"merged_into", "cus_2"},
                                             {"merge_id", "mg_7"},
                                             {"merged_head", "1700000000000-3"}}));
  std::optional<Moved> moved = MovedTo(st);
  ASSERT_TRUE(moved.has_value()) << st;
  EXPECT_EQ(moved->target, "cus_2");
  EXPECT_EQ(moved->merge_id, "mg_7");
  EXPECT_EQ(moved->head, "1700000000000-3");
}

TEST(GuardReadTest, CustomerHeldByAMergeIsStillRead) {
  // Merges refuse writes to a held customer (OS_BUSY), never reads.
  EXPECT_TRUE(GuardRead("cus_1", Hash({{"created_at", "1"}, {"merge_lock", "mg_8"}})).ok());
}

}  // namespace
}  // namespace onestory::identity
