// IdentityStore against a real redis-server.
#include "libs/identity/identity_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/common/time_util.h"
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

class IdentityStoreTest : public onestory::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    store_ = std::make_unique<IdentityStore>(client_.get());
  }

  absl::StatusOr<IdentityStore::Resolved> Resolve(const v1::Identifier& id, bool create) {
    return Await<IdentityStore::Resolved>(
        [&](auto done) { store_->Resolve("acme", id, create, Deadline(), std::move(done)); });
  }
  absl::StatusOr<IdentityStore::Linked> Link(const std::string& customer,
                                             const v1::Identifier& id) {
    return Await<IdentityStore::Linked>(
        [&](auto done) { store_->Link("acme", customer, id, Deadline(), std::move(done)); });
  }
  absl::StatusOr<bool> Unlink(const std::string& customer, const v1::Identifier& id) {
    return Await<bool>(
        [&](auto done) { store_->Unlink("acme", customer, id, Deadline(), std::move(done)); });
  }
  absl::StatusOr<v1::Profile> Profile(const std::string& customer) {
    return Await<v1::Profile>(
        [&](auto done) { store_->GetProfile("acme", customer, Deadline(), std::move(done)); });
  }

  std::unique_ptr<IdentityStore> store_;
};

TEST_F(IdentityStoreTest, ResolveCreatesOnceAndFindsByAnyFormat) {
  auto missing = Resolve(Id(v1::IDENTIFIER_TYPE_PHONE, "+1 (415) 555-0100"), false);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  auto created = Resolve(Id(v1::IDENTIFIER_TYPE_PHONE, "+1 (415) 555-0100"), true);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->identifier.value(), "14155550100");

  auto again = Resolve(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"), true);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->customer_id, created->customer_id);

  auto profile = Profile(created->customer_id);
  ASSERT_TRUE(profile.ok()) << profile.status();
  ASSERT_EQ(profile->identifiers_size(), 1);
  EXPECT_EQ(profile->identifiers(0).identifier().value(), "14155550100");
  EXPECT_GT(profile->created_at().seconds(), 0);
}

TEST_F(IdentityStoreTest, ConcurrentResolvesOfOneNewIdentifierCreateOneCustomer) {
  constexpr int kCallers = 32;
  std::vector<std::string> ids(kCallers);
  std::atomic<int> created{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] {
      auto r = Resolve(Id(v1::IDENTIFIER_TYPE_EMAIL, "Race@Example.com"), true);
      ASSERT_TRUE(r.ok()) << r.status();
      ids[i] = r->customer_id;
      if (r->created) ++created;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  EXPECT_EQ(created.load(), 1);
  // Customers created by losing callers are removed: only the winner's profile remains.
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(redis_->Run({"KEYS", "os:{acme:c:*}:p"}).elements.size(), 1u);
}

TEST_F(IdentityStoreTest, LinkUnlinkAndOwnershipConflicts) {
  auto ann = Resolve(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "cookie-ann"), true);
  auto bob = Resolve(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "cookie-bob"), true);
  ASSERT_TRUE(ann.ok() && bob.ok());

  auto linked = Link(ann->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, " Ann@Example.COM"));
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_FALSE(linked->already_linked);
  EXPECT_EQ(linked->identifier.value(), "ann@example.com");
  auto relinked = Link(ann->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  ASSERT_TRUE(relinked.ok());
  EXPECT_TRUE(relinked->already_linked);

  auto by_email = Resolve(Id(v1::IDENTIFIER_TYPE_EMAIL, "ANN@example.com"), false);
  ASSERT_TRUE(by_email.ok());
  EXPECT_EQ(by_email->customer_id, ann->customer_id);

  auto stolen = Link(bob->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(stolen.status().message(), ann->customer_id));

  auto wrong_owner = Unlink(bob->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  EXPECT_EQ(wrong_owner.status().code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(Unlink(ann->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")).ok());
  EXPECT_EQ(Resolve(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"), false).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      Unlink(ann->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")).status().code(),
      absl::StatusCode::kNotFound);
  auto profile = Profile(ann->customer_id);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->identifiers_size(), 1);  // only the chat cookie

  // Now free, the email can go to Bob.
  EXPECT_TRUE(Link(bob->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")).ok());
  EXPECT_EQ(Link("cus_nobody", Id(v1::IDENTIFIER_TYPE_PHONE, "4915112345678")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(IdentityStoreTest, UnlinkFinishesAnInterruptedUnlink) {
  auto ann = Resolve(Id(v1::IDENTIFIER_TYPE_LOYALTY_ID, "L-1"), true);
  ASSERT_TRUE(ann.ok());
  ASSERT_TRUE(Link(ann->customer_id, Id(v1::IDENTIFIER_TYPE_PHONE, "4915112345678")).ok());
  // A crash after the first step: the index entry is gone, the customer's list still has it.
  redis_->Run({"DEL", "os:{acme:i:phone:4915112345678}"});
  ASSERT_TRUE(Unlink(ann->customer_id, Id(v1::IDENTIFIER_TYPE_PHONE, "4915112345678")).ok());
  auto profile = Profile(ann->customer_id);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->identifiers_size(), 1);
}

TEST_F(IdentityStoreTest, LinkFinishesAnInterruptedLink) {
  auto ann = Resolve(Id(v1::IDENTIFIER_TYPE_CRM_ID, "crm-1"), true);
  ASSERT_TRUE(ann.ok());
  // A crash after the first step: the index names Ann, her list lacks it. A retry completes it.
  redis_->Run({"SET", "os:{acme:i:phone:4915112345678}", ann->customer_id});
  auto linked = Link(ann->customer_id, Id(v1::IDENTIFIER_TYPE_PHONE, "+49 151 1234 5678"));
  ASSERT_TRUE(linked.ok()) << linked.status();
  auto profile = Profile(ann->customer_id);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->identifiers_size(), 2);
}

TEST_F(IdentityStoreTest, UpdateProfileAppliesOnlyTheMask) {
  auto ann = Resolve(Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"), true);
  ASSERT_TRUE(ann.ok());
  v1::Profile values;
  values.set_display_name("Ann Lee");
  values.set_language("en");
  values.set_tier("gold");
  (*values.mutable_attributes())["city"] = "Lisbon";
  (*values.mutable_attributes())["pet"] = "cat";
  auto* consent = values.add_consents();
  consent->set_channel(v1::CHANNEL_SMS);
  consent->set_state(v1::CONSENT_STATE_GRANTED);
  google::protobuf::FieldMask mask;
  mask.add_paths("display_name");
  mask.add_paths("attributes");
  mask.add_paths("consents");
  auto update = [&](const v1::Profile& v, const google::protobuf::FieldMask& m) {
    return Await<v1::Profile>([&](auto done) {
      store_->UpdateProfile("acme", ann->customer_id, v, m, Deadline(), std::move(done));
    });
  };
  auto p = update(values, mask);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->display_name(), "Ann Lee");
  EXPECT_EQ(p->language(), "");  // not in the mask
  EXPECT_EQ(p->attributes().size(), 2u);
  ASSERT_EQ(p->consents_size(), 1);
  EXPECT_EQ(p->consents(0).state(), v1::CONSENT_STATE_GRANTED);

  v1::Profile change;
  (*change.mutable_attributes())["city"] = "Porto";
  google::protobuf::FieldMask one;
  one.add_paths("attributes.city");
  one.add_paths("attributes.pet");  // absent from change: removed
  one.add_paths("language");        // empty: cleared
  p = update(change, one);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->attributes().at("city"), "Porto");
  EXPECT_EQ(p->attributes().count("pet"), 0u);
  EXPECT_EQ(p->display_name(), "Ann Lee");
  EXPECT_GE(p->updated_at().seconds(), p->created_at().seconds());
}

TEST_F(IdentityStoreTest, LinkRecordsEvidenceAndARelinkStrengthensIt) {
  auto ann = Resolve(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-1"), true);
  ASSERT_TRUE(ann.ok());
  IdentityStore::LinkEvidence typed{v1::CHANNEL_CHATBOT, v1::VERIFICATION_ASSERTED, {}};
  typed.actor.set_type(v1::Actor::TYPE_BOT);
  typed.actor.set_id("bot-7");
  auto link = [&](const IdentityStore::LinkEvidence& e) {
    return Await<IdentityStore::Linked>([&](auto done) {
      store_->Link("acme", ann->customer_id, Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"), e,
                   Deadline(), std::move(done));
    });
  };
  ASSERT_TRUE(link(typed).ok());
  auto evidence = [&]() {
    auto p = Profile(ann->customer_id);
    EXPECT_TRUE(p.ok());
    for (const auto& li : p->identifiers()) {
      if (li.identifier().type() == v1::IDENTIFIER_TYPE_EMAIL) return li.evidence();
    }
    return v1::LinkEvidence();
  };
  v1::LinkEvidence first = evidence();
  EXPECT_EQ(first.channel(), v1::CHANNEL_CHATBOT);
  EXPECT_EQ(first.verification(), v1::VERIFICATION_ASSERTED);
  EXPECT_EQ(first.linked_by().type(), v1::Actor::TYPE_BOT);
  EXPECT_EQ(first.linked_by().id(), "bot-7");
  EXPECT_EQ(first.first_seen().seconds(), first.last_seen().seconds());

  absl::SleepFor(absl::Milliseconds(20));
  IdentityStore::LinkEvidence login{v1::CHANNEL_MOBILE_APP, v1::VERIFICATION_ONE_TIME_CODE, {}};
  auto again = link(login);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_linked);
  v1::LinkEvidence second = evidence();
  EXPECT_EQ(second.verification(), v1::VERIFICATION_ONE_TIME_CODE);  // raised
  EXPECT_EQ(second.channel(), v1::CHANNEL_CHATBOT);                  // first kept
  EXPECT_EQ(second.linked_by().id(), "bot-7");
  EXPECT_EQ(ToMillis(second.first_seen()), ToMillis(first.first_seen()));
  EXPECT_GT(ToMillis(second.last_seen()), ToMillis(first.last_seen()));

  // A weaker verification later does not lower it.
  ASSERT_TRUE(link(typed).ok());
  EXPECT_EQ(evidence().verification(), v1::VERIFICATION_ONE_TIME_CODE);
}

}  // namespace
}  // namespace onestory::identity
