// MergeSuggester against a real redis-server, with data set up through IdentityStore.
#include "libs/identity/merge_suggester.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "tests/testing/await.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/redis_test.h"

namespace onestory::identity {
namespace {

using onestory::testing::Id;

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisForTest;

using Attributes = std::vector<std::pair<std::string, std::string>>;

constexpr char kDenyList[] = "device_id:kiosk-*,phone:18005550100,loyalty_id:TEST-*";

// "code detail" of each reason, in order.
std::vector<std::string> Reasons(const v1::MergeSuggestion& s) {
  std::vector<std::string> out;
  for (const v1::MatchReason& r : s.reasons())
    out.push_back(absl::StrCat(r.code(), " ", r.detail()));
  return out;
}

std::vector<std::string> Ids(const v1::SuggestMergesResponse& r) {
  std::vector<std::string> out;
  for (const v1::MergeSuggestion& s : r.suggestions()) out.push_back(s.customer_id());
  return out;
}

class MergeSuggesterTest : public onestory::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    store_ = std::make_unique<IdentityStore>(client_.get());
    absl::StatusOr<MergeDenyList> deny = MergeDenyList::Parse(kDenyList);
    ASSERT_TRUE(deny.ok()) << deny.status();
    suggester_ = std::make_unique<MergeSuggester>(client_.get(), store_.get(), *deny);
  }

  // A new customer owning `id`.
  std::string Customer(const v1::Identifier& id) {
    auto r = Await<IdentityStore::Resolved>([&](auto done) {
      store_->Resolve("acme", id, /*create_if_missing=*/true, Deadline(), std::move(done));
    });
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r.ok() && r->created);
    return r.ok() ? r->customer_id : "";
  }
  // A new customer known by a chat cookie named after `name`.
  std::string Customer(const std::string& name) {
    return Customer(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "cookie-" + name));
  }

  void Link(const std::string& customer, const v1::Identifier& id) {
    auto r = Await<IdentityStore::Linked>(
        [&](auto done) { store_->Link("acme", customer, id, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Replaces the customer's attributes (and display name, when given), then indexes the
  // profile as the service does after UpdateProfile.
  void Update(const std::string& customer, const Attributes& attributes,
              const std::string& display_name = "") {
    v1::Profile values;
    values.set_display_name(display_name);
    for (const auto& [k, v] : attributes) (*values.mutable_attributes())[k] = v;
    google::protobuf::FieldMask mask;
    mask.add_paths("attributes");
    mask.add_paths("display_name");
    auto p = Await<v1::Profile>([&](auto done) {
      store_->UpdateProfile("acme", customer, values, mask, Deadline(), std::move(done));
    });
    ASSERT_TRUE(p.ok()) << p.status();
    auto indexed = Await<bool>([&](auto done) {
      suggester_->IndexProfile("acme", customer, *p, Deadline(), std::move(done));
    });
    ASSERT_TRUE(indexed.ok()) << indexed.status();
  }

  absl::StatusOr<v1::SuggestMergesResponse> Suggest(const std::string& customer, int max = 0) {
    return Await<v1::SuggestMergesResponse>([&](auto done) {
      suggester_->Suggest("acme", customer, max, Deadline(), std::move(done));
    });
  }

  bool InSet(const std::string& match_key, const std::string& customer) {
    return redis_->Run({"SISMEMBER", MatchSetKey("acme", match_key), customer}).integer == 1;
  }

  std::unique_ptr<IdentityStore> store_;
  std::unique_ptr<MergeSuggester> suggester_;
};

TEST_F(MergeSuggesterTest, MatchSetKeyIsOneHashTagPerKey) {
  EXPECT_EQ(MatchSetKey("acme", "email:ann@example.com"), "os:{acme:mk:email%3Aann@example.com}");
  EXPECT_EQ(MatchSetKey("acme", "name:ann lee|X}Y"), "os:{acme:mk:name%3Aann%20lee%7CX%7DY}");
}

TEST_F(MergeSuggesterTest, TypedEmailMatchesAnotherCustomersEmailIdentifier) {
  std::string ann = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  std::string visitor = Customer("visitor");
  Update(visitor, {{"email", "  ANN@Example.com"}, {"city", "Lisbon"}});
  EXPECT_TRUE(InSet("email:ann@example.com", visitor));

  // The visitor typed Ann's email: Ann owns it (the identifier index).
  auto r = Suggest(visitor);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->suggestions_size(), 1);
  const v1::MergeSuggestion& s = r->suggestions(0);
  EXPECT_EQ(s.customer_id(), ann);
  EXPECT_EQ(Reasons(s), std::vector<std::string>{"same_email ann@example.com"});
  EXPECT_FLOAT_EQ(s.reasons(0).weight(), kWeightEmail);
  EXPECT_FLOAT_EQ(s.score(), kWeightEmail);
  EXPECT_EQ(s.profile().customer_id(), ann);
  ASSERT_EQ(s.profile().identifiers_size(), 1);
  EXPECT_EQ(s.profile().identifiers(0).identifier().value(), "ann@example.com");

  // And the other way: someone typed Ann's identifier (the visitor's attribute set).
  r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{visitor});
  EXPECT_EQ(Reasons(r->suggestions(0)), std::vector<std::string>{"same_email ann@example.com"});
  EXPECT_EQ(r->suggestions(0).profile().attributes().at("city"), "Lisbon");
}

TEST_F(MergeSuggesterTest, TwoCustomersWithTheSameLoyaltyIdAttribute) {
  std::string ann = Customer("ann");
  std::string bob = Customer("bob");
  std::string carol = Customer("carol");
  Update(ann, {{"loyalty_id", "ab-12 34"}});
  Update(bob, {{"loyalty_id", "AB1234"}});
  Update(carol, {{"loyalty_id", "AB1235"}});

  auto r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{bob});
  EXPECT_EQ(Reasons(r->suggestions(0)), std::vector<std::string>{"same_loyalty_id AB1234"});
  EXPECT_FLOAT_EQ(r->suggestions(0).score(), kWeightLoyaltyId);
  r = Suggest(bob);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{ann});
  r = Suggest(carol);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 0);
}

TEST_F(MergeSuggesterTest, SameNameAndPostalCode) {
  std::string ann = Customer("ann");
  std::string ann2 = Customer("ann2");
  std::string neighbour = Customer("neighbour");
  Update(ann, {{"postal_code", "sw1a 1aa"}}, "Ann Lee");
  Update(ann2, {{"postal_code", "SW1A-1AA"}}, "  ann   LEE. ");
  Update(neighbour, {{"postal_code", "SW1A 1AA"}}, "Bob Lee");

  auto r = Suggest(ann2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{ann});
  EXPECT_EQ(Reasons(r->suggestions(0)),
            std::vector<std::string>{"same_name_and_postal_code ann lee, SW1A1AA"});
  EXPECT_FLOAT_EQ(r->suggestions(0).score(), kWeightNameAndPostalCode);
}

TEST_F(MergeSuggesterTest, DenyListedValuesAreNeverAReason) {
  // The call center's own number, typed by customers into a form, and test loyalty cards.
  std::string front_desk = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "+1 800 555 0100"));
  std::string ann = Customer("ann");
  std::string bob = Customer("bob");
  Update(ann, {{"phone", "1-800-555-0100"}, {"loyalty_id", "test-1"}, {"email", "a@x.com"}});
  Update(bob, {{"phone", "+1 (800) 555 0100 "}, {"loyalty_id", "TEST-1"}, {"email", "a@x.com"}});
  // A kiosk device: the deny list holds it even though devices are no match key.
  Link(ann, Id(v1::IDENTIFIER_TYPE_DEVICE_ID, "KIOSK-7"));

  // Neither indexed...
  EXPECT_FALSE(InSet("phone:18005550100", ann));
  EXPECT_FALSE(InSet("loyalty:TEST1", ann));
  EXPECT_TRUE(InSet("email:a@x.com", ann));
  // ...nor looked up: the front desk owns the phone, but is never suggested.
  auto r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{bob});
  EXPECT_EQ(Reasons(r->suggestions(0)), std::vector<std::string>{"same_email a@x.com"});
  r = Suggest(front_desk);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 0);

  // Even a set filled before the value was denied is not read.
  redis_->Run({"SADD", MatchSetKey("acme", "phone:18005550100"), ann, bob});
  r = Suggest(front_desk);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 0);
  r = Suggest(bob);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{ann});
  EXPECT_EQ(Reasons(r->suggestions(0)), std::vector<std::string>{"same_email a@x.com"});
}

TEST_F(MergeSuggesterTest, StaleIndexEntriesAreDroppedAfterTheAttributeChanges) {
  std::string ann = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  std::string visitor = Customer("visitor");
  Update(visitor, {{"email", "ann@example.com"}});
  auto r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{visitor});

  // The visitor corrects the typo; the old set still names them until a Suggest looks.
  Update(visitor, {{"email", "anne@example.com"}});
  EXPECT_TRUE(InSet("email:ann@example.com", visitor));
  r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 0);
  // The removal is best effort, sent before the answer: give it a moment.
  absl::Time until = absl::Now() + absl::Seconds(2);
  while (InSet("email:ann@example.com", visitor) && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_FALSE(InSet("email:ann@example.com", visitor));
  EXPECT_TRUE(InSet("email:anne@example.com", visitor));
}

TEST_F(MergeSuggesterTest, GoneMergedAndMalformedCandidatesAreSkipped) {
  std::string bob = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "bob@example.com"));
  std::string ann = Customer("ann");
  std::string carol = Customer("carol");
  Update(ann, {{"email", "bob@example.com"}});
  Update(carol, {{"email", "bob@example.com"}});
  // Carol was merged into someone else: her id is no longer a customer of its own.
  redis_->Run({"HSET", keys::CustomerKeys("acme", carol).profile(), "merged_into", "cus_other"});
  redis_->Run({"SADD", MatchSetKey("acme", "email:bob@example.com"), "cus_gone", "not a {id}"});

  auto r = Suggest(bob);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{ann});
  // A merged or vanished customer may come back (an unmerge): not removed from the set.
  EXPECT_TRUE(InSet("email:bob@example.com", carol));
}

TEST_F(MergeSuggesterTest, SelfIsNeverSuggested) {
  std::string ann = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  Update(ann, {{"email", "ann@example.com"}, {"postal_code", "94107"}, {"crm_id", "C-1"}},
         "Ann Lee");
  EXPECT_TRUE(InSet("email:ann@example.com", ann));
  auto r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 0);

  std::string bob = Customer("bob");
  Update(bob, {{"crm_id", "C-1"}});
  r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>{bob});
}

TEST_F(MergeSuggesterTest, OrderedByScoreThenCustomerId) {
  std::string ann = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  Link(ann, Id(v1::IDENTIFIER_TYPE_PHONE, "+1 415 555 0100"));
  Update(ann, {{"loyalty_id", "L-77"}, {"postal_code", "94107"}}, "Ann Lee");
  std::string by_three = Customer("three");  // email + phone + name: 2.1
  Update(by_three,
         {{"email", "ann@example.com"}, {"phone", "14155550100"}, {"postal_code", "94107"}},
         "Ann Lee");
  std::string by_loyalty_a = Customer("loyalty-a");  // 0.9
  Update(by_loyalty_a, {{"loyalty_id", "L77"}});
  std::string by_loyalty_b = Customer("loyalty-b");  // 0.9
  Update(by_loyalty_b, {{"loyalty_id", "l-77"}});
  std::string by_phone = Customer("phone");  // 0.7
  Update(by_phone, {{"phone", "+1 (415) 555-0100"}});

  auto r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> tied = {by_loyalty_a, by_loyalty_b};
  std::sort(tied.begin(), tied.end());
  EXPECT_EQ(Ids(*r), (std::vector<std::string>{by_three, tied[0], tied[1], by_phone}));
  ASSERT_EQ(r->suggestions_size(), 4);
  const v1::MergeSuggestion& top = r->suggestions(0);
  EXPECT_EQ(Reasons(top),
            (std::vector<std::string>{"same_email ann@example.com", "same_phone 14155550100",
                                      "same_name_and_postal_code ann lee, 94107"}));
  EXPECT_FLOAT_EQ(top.score(), kWeightEmail + kWeightPhone + kWeightNameAndPostalCode);
  EXPECT_FLOAT_EQ(r->suggestions(1).score(), kWeightLoyaltyId);
  EXPECT_FLOAT_EQ(r->suggestions(3).score(), kWeightPhone);
}

TEST_F(MergeSuggesterTest, MaxCapsTheSuggestions) {
  std::string ann = Customer(Id(v1::IDENTIFIER_TYPE_CRM_ID, "C-42"));
  std::vector<std::string> others;
  for (int i = 0; i < 12; ++i) {
    others.push_back(Customer(absl::StrCat("other-", i)));
    Update(others.back(), {{"crm_id", "C-42"}});
  }
  std::sort(others.begin(), others.end());

  auto r = Suggest(ann, 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>(others.begin(), others.begin() + 10));
  r = Suggest(ann, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Ids(*r), std::vector<std::string>(others.begin(), others.begin() + 3));
  r = Suggest(ann, 50);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 12);
  EXPECT_EQ(Suggest(ann, 51).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Suggest(ann, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MergeSuggesterTest, Errors) {
  EXPECT_EQ(Suggest("cus_nobody").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Suggest("bad id!").status().code(), absl::StatusCode::kInvalidArgument);
  auto indexed = Await<bool>([&](auto done) {
    suggester_->IndexProfile("bad tenant", "cus_1", v1::Profile(), Deadline(), std::move(done));
  });
  EXPECT_EQ(indexed.status().code(), absl::StatusCode::kInvalidArgument);
  // A customer without match keys: nothing to index, nothing to suggest.
  std::string ann = Customer("ann");
  indexed = Await<bool>([&](auto done) {
    suggester_->IndexProfile("acme", ann, v1::Profile(), Deadline(), std::move(done));
  });
  EXPECT_TRUE(indexed.ok()) << indexed.status();
  auto r = Suggest(ann);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->suggestions_size(), 0);
}

TEST_F(MergeSuggesterTest, UnavailableWhenRedisIsDown) {
  if (redis_->cluster()) GTEST_SKIP() << "a single Redis killed (cluster faults: e2e_cluster_fault)";
  std::string ann = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  redis_->Kill();
  auto r = Suggest(ann);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  redis_->Restart();
}

}  // namespace
}  // namespace onestory::identity
