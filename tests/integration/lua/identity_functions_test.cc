// The identity functions (libs/identity/lua/) called directly on hand-built keys: a customer
// created exactly once, the compare-and-set of identifier index entries (claim over an erased
// owner, reclaim, unclaim), the guard on unknown, erased, merged and held customers, the
// identifier limits, link evidence refreshed and only ever raised, unlink, and profile updates
// (all or nothing under the attribute limit).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/identity_check.h"
#include "libs/lua/identity_claim_over.h"
#include "libs/lua/identity_create.h"
#include "libs/lua/identity_get_profile.h"
#include "libs/lua/identity_link_precheck.h"
#include "libs/lua/identity_reclaim.h"
#include "libs/lua/identity_record_link.h"
#include "libs/lua/identity_unclaim.h"
#include "libs/lua/identity_unlink.h"
#include "libs/lua/identity_update_profile.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

class IdentityFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  // A HGETALL reply as a map.
  static std::map<std::string, std::string> Hash(const redis::Reply& r) {
    std::map<std::string, std::string> m;
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
      m[r.elements[i].str] = r.elements[i + 1].str;
    return m;
  }
  std::map<std::string, std::string> Stored(const std::string& key) {
    return Hash(Run({"HGETALL", key}));
  }
  IdentityCheck Check(const std::string& customer_id, bool write) {
    IdentityCheck call;
    call.profile = keys::CustomerKeys("acme", customer_id).profile();
    call.customer_id = customer_id;
    call.write = write ? 1 : 0;
    return call;
  }
  IdentityLinkPrecheck Precheck(const std::string& field, const std::string& type_name) {
    IdentityLinkPrecheck call;
    call.profile = ck_.profile();
    call.identifiers = ck_.identifiers();
    call.customer_id = "cus_1";
    call.field = field;
    call.max_total = 3;
    call.max_per_type = 2;
    call.type_name = type_name;
    return call;
  }
  IdentityRecordLink Record(const std::string& field, const std::string& now,
                            int64_t verification) {
    IdentityRecordLink call;
    call.profile = ck_.profile();
    call.identifiers = ck_.identifiers();
    call.customer_id = "cus_1";
    call.field = field;
    call.evidence = absl::StrCat("v2|", now, "|", now, "|", verification, "|1|2|agent|ag_1");
    call.now_ms = now;
    call.verification = verification;
    return call;
  }
  IdentityUpdateProfile Update(std::vector<std::string> ops, int64_t max_attributes = 2) {
    IdentityUpdateProfile call;
    call.profile = ck_.profile();
    call.identifiers = ck_.identifiers();
    call.customer_id = "cus_1";
    call.now_ms = 2000;
    call.max_attributes = max_attributes;
    call.ops = std::move(ops);
    return call;
  }
  // A hand-built owner of an index entry.
  template <typename CallT>
  CallT OnIndex() {
    CallT call;
    call.index = index_;
    return call;
  }

  const keys::CustomerKeys ck_{"acme", "cus_1"};
  const std::string index_ = keys::IdentifierKey("acme", v1::IDENTIFIER_TYPE_EMAIL, "a@b.com");
};

TEST_F(IdentityFunctionsTest, CreateCreatesExactlyOnce) {
  IdentityCreate call;
  call.profile = ck_.profile();
  call.identifiers = ck_.identifiers();
  call.now_ms = 1000;
  call.field = "email:a@b.com";
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Stored(ck_.profile()),
            (std::map<std::string, std::string>{{"created_at", "1000"}, {"updated_at", "1000"}}));
  EXPECT_EQ(Stored(ck_.identifiers()),
            (std::map<std::string, std::string>{{"email:a@b.com", "1000"}}));
  // A second call (the same id drawn twice) changes nothing.
  call.now_ms = 5000;
  call.field = "email:c@d.com";
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Stored(ck_.profile())["created_at"], "1000");
  EXPECT_EQ(Stored(ck_.identifiers()).size(), 1u);
}

TEST_F(IdentityFunctionsTest, ClaimOverTakesAFreeOrErasedEntryOnly) {
  auto call = OnIndex<IdentityClaimOver>();
  call.new_owner = "cus_new";
  call.erased_owner = "cus_gone";
  absl::StatusOr<redis::Reply> r = Call(call);  // nobody has it
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->is_nil());
  EXPECT_EQ(Run({"GET", index_}).str, "cus_new");

  Run({"SET", index_, "cus_gone"});
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "cus_gone");
  EXPECT_EQ(Run({"GET", index_}).str, "cus_new");

  Run({"SET", index_, "cus_live"});
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "cus_live");
  EXPECT_EQ(Run({"GET", index_}).str, "cus_live");
}

TEST_F(IdentityFunctionsTest, ReclaimIsACompareAndSet) {
  Run({"SET", index_, "cus_old"});
  auto call = OnIndex<IdentityReclaim>();
  call.new_owner = "cus_1";
  call.expected_owner = "cus_other";
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "cus_old");
  EXPECT_EQ(Run({"GET", index_}).str, "cus_old");

  call.expected_owner = "cus_old";
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "cus_old");
  EXPECT_EQ(Run({"GET", index_}).str, "cus_1");

  // Nobody: nothing to move, and nothing created.
  Run({"DEL", index_});
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->is_nil());
  EXPECT_EQ(Run({"EXISTS", index_}).integer, 0);
}

TEST_F(IdentityFunctionsTest, UnclaimDeletesOnlyTheCustomersOwnEntry) {
  auto call = OnIndex<IdentityUnclaim>();
  call.customer_id = "cus_1";
  Run({"SET", index_, "cus_2"});
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "cus_2");
  EXPECT_EQ(Run({"GET", index_}).str, "cus_2");

  Run({"SET", index_, "cus_1"});
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"EXISTS", index_}).integer, 0);

  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->is_nil());
}

TEST_F(IdentityFunctionsTest, CheckGuardsUnknownErasedMergedAndHeldCustomers) {
  absl::StatusOr<redis::Reply> r = Call(Check("cus_1", false));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 not found");

  Run({"HSET", ck_.profile(), "erased_at", "1700000000000"});
  r = Call(Check("cus_1", true));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 was erased");

  keys::CustomerKeys merged("acme", "cus_m");
  Run({"HSET", merged.profile(), "created_at", "1", "merged_into", "cus_2", "merge_id", "mg_7",
       "merged_head", "1700000000000-3"});
  r = Call(Check("cus_m", false));
  std::optional<identity::Moved> moved = identity::MovedTo(r.status());
  ASSERT_TRUE(moved.has_value()) << r.status();
  EXPECT_EQ(moved->target, "cus_2");
  EXPECT_EQ(moved->merge_id, "mg_7");
  EXPECT_EQ(moved->head, "1700000000000-3");

  // Held by a merge: read, never written.
  keys::CustomerKeys held("acme", "cus_h");
  Run({"HSET", held.profile(), "created_at", "1", "merge_lock", "mg_8"});
  r = Call(Check("cus_h", false));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  r = Call(Check("cus_h", true));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_h is held by merge mg_8; retry shortly");

  keys::CustomerKeys live("acme", "cus_l");
  Run({"HSET", live.profile(), "created_at", "1"});
  r = Call(Check("cus_l", true));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
}

TEST_F(IdentityFunctionsTest, GetProfileReadsBothHashesOfALiveCustomerOnly) {
  Run({"HSET", ck_.profile(), "created_at", "1", "display_name", "Ana", "merge_lock", "mg_1"});
  Run({"HSET", ck_.identifiers(), "email:a@b.com", "1"});
  IdentityGetProfile call;
  call.profile = ck_.profile();
  call.identifiers = ck_.identifiers();
  call.customer_id = "cus_1";
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 2u);
  EXPECT_EQ(Hash(r->elements[0])["display_name"], "Ana");
  EXPECT_EQ(Hash(r->elements[1]), (std::map<std::string, std::string>{{"email:a@b.com", "1"}}));

  Run({"HSET", ck_.profile(), "merged_into", "cus_2"});
  r = Call(call);
  EXPECT_TRUE(identity::MovedTo(r.status()).has_value()) << r.status();
}

TEST_F(IdentityFunctionsTest, LinkPrecheckEnforcesBothLimitsButNotForAKnownIdentifier) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  absl::StatusOr<redis::Reply> r = Call(Precheck("email:a@b.com", "email"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);

  Run({"HSET", ck_.identifiers(), "email:a@b.com", "1", "email:c@d.com", "1"});
  r = Call(Precheck("email:e@f.com", "email"));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 already has 2 identifiers of type email");
  // Another type still has room; one the customer has is always fine.
  r = Call(Precheck("phone:+14155550100", "phone"));
  ASSERT_TRUE(r.ok()) << r.status();
  r = Call(Precheck("email:a@b.com", "email"));
  ASSERT_TRUE(r.ok()) << r.status();

  Run({"HSET", ck_.identifiers(), "phone:+14155550100", "1"});
  r = Call(Precheck("phone:+14155550101", "phone"));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 already has 3 identifiers");

  // Held by a merge: no link starts.
  Run({"HSET", ck_.profile(), "merge_lock", "mg_9"});
  r = Call(Precheck("email:a@b.com", "email"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
}

TEST_F(IdentityFunctionsTest, RecordLinkAddsRefreshesAndOnlyRaisesVerification) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  absl::StatusOr<redis::Reply> r = Call(Record("email:a@b.com", "1000", 3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Stored(ck_.identifiers())["email:a@b.com"], "v2|1000|1000|3|1|2|agent|ag_1");

  // Again, less verified: last_seen moves, the verification stays, the rest is kept.
  r = Call(Record("email:a@b.com", "2000", 2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Stored(ck_.identifiers())["email:a@b.com"], "v2|1000|2000|3|1|2|agent|ag_1");
  r = Call(Record("email:a@b.com", "3000", 4));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Stored(ck_.identifiers())["email:a@b.com"], "v2|1000|3000|4|1|2|agent|ag_1");

  // A link stored before evidence had versions: only its first-seen ms.
  Run({"HSET", ck_.identifiers(), "phone:+14155550100", "500"});
  r = Call(Record("phone:+14155550100", "4000", 2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Stored(ck_.identifiers())["phone:+14155550100"], "v2|500|4000|2|0|4|||");

  // Merged meanwhile: nothing recorded.
  Run({"HSET", ck_.profile(), "merged_into", "cus_2"});
  r = Call(Record("email:x@y.com", "5000", 2));
  EXPECT_TRUE(identity::MovedTo(r.status()).has_value()) << r.status();
  EXPECT_EQ(Stored(ck_.identifiers()).count("email:x@y.com"), 0u);
}

TEST_F(IdentityFunctionsTest, UnlinkSaysWhetherTheCustomerAndTheFieldExisted) {
  IdentityUnlink call;
  call.profile = ck_.profile();
  call.identifiers = ck_.identifiers();
  call.field = "email:a@b.com";
  auto answer = [&]() -> std::vector<int64_t> {
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->elements.size() != 2) return {};
    return {r->elements[0].integer, r->elements[1].integer};
  };
  EXPECT_EQ(answer(), (std::vector<int64_t>{0, 0}));
  Run({"HSET", ck_.profile(), "created_at", "1"});
  Run({"HSET", ck_.identifiers(), "email:a@b.com", "1", "phone:+14155550100", "1"});
  EXPECT_EQ(answer(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(Stored(ck_.identifiers()),
            (std::map<std::string, std::string>{{"phone:+14155550100", "1"}}));
  EXPECT_EQ(answer(), (std::vector<int64_t>{1, 0}));
}

TEST_F(IdentityFunctionsTest, UpdateProfileSetsDeletesAndClearsAttributes) {
  Run({"HSET", ck_.profile(), "created_at", "1", "updated_at", "1", "tier", "gold", "attr:a", "1",
       "attr:b", "2"});
  Run({"HSET", ck_.identifiers(), "email:a@b.com", "1"});
  // Clear, then set one again and a new one: two attributes, within the limit of 2.
  absl::StatusOr<redis::Reply> r =
      Call(Update({"clr", "", "", "set", "attr:b", "20", "set", "attr:c", "3", "del", "tier", "",
                   "set", "display_name", "Ana"}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 2u);
  std::map<std::string, std::string> want = {{"created_at", "1"},
                                             {"updated_at", "2000"},
                                             {"attr:b", "20"},
                                             {"attr:c", "3"},
                                             {"display_name", "Ana"}};
  EXPECT_EQ(Hash(r->elements[0]), want);
  EXPECT_EQ(Stored(ck_.profile()), want);
  EXPECT_EQ(Hash(r->elements[1]).size(), 1u);
}

TEST_F(IdentityFunctionsTest, UpdateProfileOverTheAttributeLimitWritesNothing) {
  Run({"HSET", ck_.profile(), "created_at", "1", "updated_at", "1", "attr:a", "1", "attr:b", "2"});
  std::map<std::string, std::string> before = Stored(ck_.profile());
  absl::StatusOr<redis::Reply> r =
      Call(Update({"set", "display_name", "Ana", "set", "attr:c", "3"}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(r.status().message(), "profile.attributes: at most 2 entries");
  EXPECT_EQ(Stored(ck_.profile()), before);
  // Replacing one within the limit is fine.
  r = Call(Update({"del", "attr:a", "", "set", "attr:c", "3"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Stored(ck_.profile()).count("attr:a"), 0u);
  EXPECT_EQ(Stored(ck_.profile())["attr:c"], "3");
}

TEST_F(IdentityFunctionsTest, UpdateProfileOfAHeldOrMergedCustomerWritesNothing) {
  Run({"HSET", ck_.profile(), "created_at", "1", "merge_lock", "mg_1"});
  absl::StatusOr<redis::Reply> r = Call(Update({"set", "display_name", "Ana"}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  Run({"HDEL", ck_.profile(), "merge_lock"});
  Run({"HSET", ck_.profile(), "merged_into", "cus_2"});
  r = Call(Update({"set", "display_name", "Ana"}));
  EXPECT_TRUE(identity::MovedTo(r.status()).has_value()) << r.status();
  EXPECT_EQ(Stored(ck_.profile()).count("display_name"), 0u);
}

}  // namespace
}  // namespace onestory::lua
