// MergeEngine against a real redis-server: merge, unmerge, redirects, conflicts, limits, a crash
// before every step (recovered by a retry or by the recovery pass), and merges, links and
// appends racing on overlapping customers.
#include "libs/merge/merge_engine.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/field_mask.pb.h"
#include "libs/common/time_util.h"
#include "libs/context/context_store.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/timeline/timeline_store.h"
#include "tests/testing/await.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/redis_test.h"

namespace onestory::merge {
namespace {

using onestory::testing::Id;

using identity::IdentityStore;
using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisForTest;

v1::Event Ev(const std::string& id, int64_t occurred_ms, v1::Channel channel = v1::CHANNEL_VOICE,
             const std::string& conversation = "") {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(channel);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  *e.mutable_occurred_at() = FromMillis(occurred_ms);
  e.set_conversation_id(conversation);
  return e;
}

v1::Actor Agent() {
  v1::Actor a;
  a.set_type(v1::Actor::TYPE_AGENT);
  a.set_id("agent-1");
  return a;
}

class MergeEngineTest : public onestory::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    identity_ = std::make_unique<IdentityStore>(client_.get());
    timeline_ = std::make_unique<timeline::TimelineStore>(client_.get(), identity_.get());
    context_ = std::make_unique<context::ContextStore>(client_.get(), identity_.get());
    engine_ = std::make_unique<MergeEngine>(client_.get());
    now_ = NowMillis() - 3600 * 1000;
  }

  std::string NewCustomer(const v1::Identifier& id) {
    auto r = Await<IdentityStore::Resolved>(
        [&](auto done) { identity_->Resolve("acme", id, true, Deadline(), std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->customer_id : "";
  }

  absl::StatusOr<IdentityStore::Linked> Link(const std::string& c, const v1::Identifier& id) {
    return Await<IdentityStore::Linked>(
        [&](auto done) { identity_->Link("acme", c, id, Deadline(), std::move(done)); });
  }

  absl::StatusOr<v1::AppendResponse> Append(v1::CustomerRef ref, std::vector<v1::Event> events) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    *req.mutable_customer() = std::move(ref);
    for (auto& e : events) *req.add_events() = std::move(e);
    return Await<v1::AppendResponse>(
        [&](auto done) { timeline_->Append(req, Deadline(), std::move(done)); });
  }
  absl::StatusOr<v1::AppendResponse> Append(const std::string& c, std::vector<v1::Event> events) {
    v1::CustomerRef ref;
    ref.set_customer_id(c);
    return Append(ref, std::move(events));
  }

  // Every event of the customer's timeline, oldest first: summary-less ids in order.
  std::vector<std::string> EventIds(const std::string& c, std::string* owner = nullptr) {
    std::vector<std::string> out;
    v1::ListRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(c);
    req.set_order(v1::ORDER_OLDEST_FIRST);
    req.set_page_size(500);
    for (;;) {
      auto r = Await<v1::ListResponse>(
          [&](auto done) { timeline_->List(req, Deadline(), std::move(done)); });
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      for (const auto& e : r->events()) {
        out.push_back(e.event_id());
        if (owner) *owner = e.customer_id();
      }
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    return out;
  }

  absl::StatusOr<v1::Profile> Profile(const std::string& c) {
    return Await<v1::Profile>(
        [&](auto done) { identity_->GetProfile("acme", c, Deadline(), std::move(done)); });
  }

  absl::StatusOr<MergeEngine::Result> Merge(MergeEngine* engine, const std::string& source,
                                            const std::string& target,
                                            std::vector<std::string> take = {}) {
    MergeInput in{"acme",  source,         target, "same person: confirmed by phone",
                  Agent(), std::move(take)};
    return Await<MergeEngine::Result>(
        [&](auto done) { engine->Merge(in, Deadline(), std::move(done)); });
  }
  absl::StatusOr<MergeEngine::Result> Merge(const std::string& source, const std::string& target,
                                            std::vector<std::string> take = {}) {
    return Merge(engine_.get(), source, target, std::move(take));
  }

  absl::StatusOr<v1::MergeRecord> Unmerge(MergeEngine* engine, const std::string& merge_id) {
    return Await<v1::MergeRecord>([&](auto done) {
      engine->Unmerge("acme", merge_id, "not the same person", Agent(), Deadline(),
                      std::move(done));
    });
  }

  absl::StatusOr<std::string> Owner(const v1::Identifier& id) {
    auto r = Await<IdentityStore::Resolved>(
        [&](auto done) { identity_->Resolve("acme", id, false, Deadline(), std::move(done)); });
    if (!r.ok()) return r.status();
    return Await<std::string>(
        [&](auto done) { identity_->RootOf("acme", r->customer_id, Deadline(), std::move(done)); });
  }

  // Two customers with interleaved events on two channels, an open conversation each and
  // profile fields; b also has a chat session.
  void TwoCustomers(std::string* a, std::string* b) {
    *a = NewCustomer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
    *b = NewCustomer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
    ASSERT_TRUE(Link(*b, Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-1")).ok());
    ASSERT_TRUE(Append(*a, {Ev("a1", now_ + 1000), Ev("a2", now_ + 3000, v1::CHANNEL_VOICE, "call"),
                            Ev("a3", now_ + 5000)})
                    .ok());
    ASSERT_TRUE(Append(*b, {Ev("b1", now_ + 2000, v1::CHANNEL_CHATBOT, "chat"),
                            Ev("b2", now_ + 4000, v1::CHANNEL_CHATBOT, "chat")})
                    .ok());
    redis_->Run({"HSET", keys::CustomerKeys("acme", *a).profile(), "display_name", "Ann Lee"});
    redis_->Run({"HSET", keys::CustomerKeys("acme", *b).profile(), "display_name", "A. Lee", "tier",
                 "gold"});
  }

  std::unique_ptr<IdentityStore> identity_;
  std::unique_ptr<timeline::TimelineStore> timeline_;
  std::unique_ptr<context::ContextStore> context_;
  std::unique_ptr<MergeEngine> engine_;
  int64_t now_ = 0;
};

TEST_F(MergeEngineTest, MergeMovesEverythingAndTheSourceLeadsToTheTarget) {
  std::string a, b;
  TwoCustomers(&a, &b);
  // A Watch of the target would hold this cursor: the position after a2.
  auto head = Await<std::string>(
      [&](auto done) { timeline_->Head("acme", a, Deadline(), std::move(done)); });
  ASSERT_TRUE(head.ok());

  auto m = Merge(b, a);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->record.state(), v1::MergeRecord::STATE_MERGED);
  EXPECT_EQ(m->record.events_moved(), 2);
  EXPECT_EQ(m->record.source_identifiers_size(), 2);

  // One timeline in occurred_at order, reached through either id.
  std::string owner;
  EXPECT_EQ(EventIds(b, &owner), (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3"}));
  EXPECT_EQ(owner, a);
  EXPECT_EQ(EventIds(a), EventIds(b));
  // A reader positioned at the target's old head sees nothing old again.
  auto after = Await<timeline::TimelineStore::Batch>(
      [&](auto done) { timeline_->ReadAfter("acme", a, *head, 100, Deadline(), std::move(done)); });
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->events.empty());

  // Identifiers and profile.
  EXPECT_EQ(*Owner(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")), a);
  auto p = Profile(b);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->customer_id(), a);
  EXPECT_EQ(p->display_name(), "Ann Lee");  // the target's value wins
  EXPECT_EQ(p->tier(), "gold");             // filled from the source
  ASSERT_EQ(p->identifiers_size(), 3);
  int from_merge = 0;
  for (const auto& li : p->identifiers()) {
    if (li.evidence().merge_id() == m->record.merge_id()) {
      EXPECT_EQ(li.evidence().merged_from(), b);
      ++from_merge;
    }
  }
  EXPECT_EQ(from_merge, 2);

  // Appends through the source's id and identifier land on the target; dedup covers the
  // moved events.
  auto via_id = Append(b, {Ev("b3", now_ + 6000)});
  ASSERT_TRUE(via_id.ok()) << via_id.status();
  EXPECT_EQ(via_id->customer_id(), a);
  v1::CustomerRef chat;
  *chat.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-1");
  auto via_chat = Append(chat, {Ev("b4", now_ + 7000), Ev("b1", now_ + 2000)});
  ASSERT_TRUE(via_chat.ok()) << via_chat.status();
  EXPECT_FALSE(via_chat->results(0).duplicate());
  EXPECT_TRUE(via_chat->results(1).duplicate());

  // Context: one call, the merged view.
  v1::GetContextRequest creq;
  creq.set_tenant("acme");
  creq.mutable_customer()->set_customer_id(b);
  auto ctx = Await<v1::GetContextResponse>(
      [&](auto done) { context_->GetContext(creq, Deadline(), std::move(done)); });
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  *ctx = context::WithDecodedEvents(*ctx);
  EXPECT_EQ(ctx->profile().customer_id(), a);
  EXPECT_EQ(ctx->total_events(), 7);
  std::set<std::string> open;
  for (const auto& c : ctx->open_conversations()) open.insert(c.conversation_id());
  EXPECT_EQ(open, (std::set<std::string>{"call", "chat"}));

  // A retry is answered with the same merge.
  auto again = Merge(b, a);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->already_merged);
  EXPECT_EQ(again->record.merge_id(), m->record.merge_id());

  auto history = Await<std::vector<v1::MergeRecord>>(
      [&](auto done) { engine_->History("acme", b, Deadline(), std::move(done)); });
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 1u);
  EXPECT_EQ((*history)[0].merge_id(), m->record.merge_id());
}

TEST_F(MergeEngineTest, UnmergeGivesEverythingBack) {
  std::string a, b;
  TwoCustomers(&a, &b);
  auto m = Merge(b, a, {"display_name"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(Profile(a)->display_name(), "A. Lee");  // taken from the source on request
  ASSERT_TRUE(Append(b, {Ev("via-source-id", now_ + 6000)}).ok());
  v1::CustomerRef email;
  *email.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  ASSERT_TRUE(Append(email, {Ev("via-source-email", now_ + 7000)}).ok());
  ASSERT_TRUE(Append(a, {Ev("via-target", now_ + 8000)}).ok());
  ASSERT_TRUE(Link(a, Id(v1::IDENTIFIER_TYPE_LOYALTY_ID, "L-9")).ok());

  auto u = Unmerge(engine_.get(), m->record.merge_id());
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->state(), v1::MergeRecord::STATE_UNMERGED);
  EXPECT_EQ(u->events_returned(), 2);

  EXPECT_EQ(EventIds(a), (std::vector<std::string>{"a1", "a2", "a3", "via-target"}));
  EXPECT_EQ(EventIds(b),
            (std::vector<std::string>{"b1", "b2", "via-source-id", "via-source-email"}));
  EXPECT_EQ(*Owner(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")), b);
  EXPECT_EQ(*Owner(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-1")), b);
  EXPECT_EQ(*Owner(Id(v1::IDENTIFIER_TYPE_LOYALTY_ID, "L-9")), a);  // linked to the target
  auto pa = Profile(a);
  auto pb = Profile(b);
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(pa->customer_id(), a);
  EXPECT_EQ(pa->display_name(), "Ann Lee");
  EXPECT_EQ(pa->tier(), "");
  EXPECT_EQ(pa->identifiers_size(), 2);
  EXPECT_EQ(pb->customer_id(), b);
  EXPECT_EQ(pb->display_name(), "A. Lee");
  EXPECT_EQ(pb->identifiers_size(), 2);
  // The source takes writes again, and the merge cannot be undone twice.
  EXPECT_TRUE(Append(b, {Ev("after-unmerge", now_ + 9000)}).ok());
  auto twice = Unmerge(engine_.get(), m->record.merge_id());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(twice.status().message(), "already unmerged"));
  // Merging again is a new merge.
  auto again = Merge(b, a);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->already_merged);
  EXPECT_NE(again->record.merge_id(), m->record.merge_id());
}

TEST_F(MergeEngineTest, RefusesBadRequestsAndStatesChangingNothing) {
  std::string a, b;
  TwoCustomers(&a, &b);
  std::string c = NewCustomer(Id(v1::IDENTIFIER_TYPE_CRM_ID, "crm-3"));
  auto before = redis_->Snapshot();
  EXPECT_EQ(Merge(a, a).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Merge("cus_nobody", a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Merge(a, "cus_nobody").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Merge(a, b, {"email"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Merge("bad id!", b).status().code(), absl::StatusCode::kInvalidArgument);
  MergeInput other_tenant{"globex", b, a, "x", Agent(), {}};
  auto cross = Await<MergeEngine::Result>(
      [&](auto done) { engine_->Merge(other_tenant, Deadline(), std::move(done)); });
  EXPECT_EQ(cross.status().code(), absl::StatusCode::kNotFound);
  MergeInput no_reason{"acme", b, a, "", Agent(), {}};
  EXPECT_EQ(Await<MergeEngine::Result>(
                [&](auto done) { engine_->Merge(no_reason, Deadline(), std::move(done)); })
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Unmerge(engine_.get(), "mrg_unknown").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(redis_->Snapshot(), before);

  // A customer held by another merge: ABORTED, nothing changed.
  redis_->Run({"HSET", keys::CustomerKeys("acme", a).profile(), "merge_lock", "mrg_other"});
  before = redis_->Snapshot();
  EXPECT_EQ(Merge(b, a).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Append(a, {Ev("blocked", now_)}).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(redis_->Snapshot(), before);
  // As the source, held by a merge whose record is gone (it ended between Merge's reads of the
  // lock and of the record): ABORTED too, not NOT_FOUND of a merge id the caller never gave.
  auto held = Merge(a, b);
  EXPECT_EQ(held.status().code(), absl::StatusCode::kAborted) << held.status();
  EXPECT_TRUE(absl::StrContains(held.status().message(), "mrg_other")) << held.status();
  EXPECT_EQ(redis_->Snapshot(), before);
  redis_->Run({"HDEL", keys::CustomerKeys("acme", a).profile(), "merge_lock"});

  // Chains: b into a, then a into c. b cannot merge again; nothing merges into a or b; the
  // first merge cannot be undone before the second.
  auto m1 = Merge(b, a);
  ASSERT_TRUE(m1.ok());
  auto m2 = Merge(a, c);
  ASSERT_TRUE(m2.ok()) << m2.status();
  EXPECT_EQ(EventIds(b).size(), 5u);  // b -> a -> c
  before = redis_->Snapshot();
  auto again = Merge(b, c);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  auto into_merged = Merge(c, a);
  EXPECT_EQ(into_merged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(into_merged.status().message(), c)) << into_merged.status();
  auto early = Unmerge(engine_.get(), m1->record.merge_id());
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition) << early.status();
  EXPECT_EQ(redis_->Snapshot(), before);
  ASSERT_TRUE(Unmerge(engine_.get(), m2->record.merge_id()).ok());
  ASSERT_TRUE(Unmerge(engine_.get(), m1->record.merge_id()).ok());
  EXPECT_EQ(EventIds(a), (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(EventIds(b), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_TRUE(EventIds(c).empty());
}

TEST_F(MergeEngineTest, IdentifierLimitsAreCheckedBeforeAnythingMoves) {
  std::string a, b;
  TwoCustomers(&a, &b);
  // 600 + 600 device ids: over both the per-customer (1,000) and per-type (500) limits.
  for (const auto& c : {a, b}) {
    std::vector<std::string> cmd = {"HSET", keys::CustomerKeys("acme", c).identifiers()};
    for (int i = 0; i < 600; ++i) {
      cmd.push_back(absl::StrCat("device:", c, "-", i));
      cmd.push_back("1");
    }
    redis_->Run(cmd);
  }
  auto before = redis_->Snapshot();
  auto m = Merge(b, a);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted) << m.status();
  EXPECT_EQ(redis_->Snapshot(), before);
  // Per type only: 300 + 300 phones.
  redis_->FlushAll();
  TwoCustomers(&a, &b);
  for (const auto& c : {a, b}) {
    std::vector<std::string> cmd = {"HSET", keys::CustomerKeys("acme", c).identifiers()};
    for (int i = 0; i < 300; ++i) {
      cmd.push_back(absl::StrCat("phone:1", c.size(), i, c.substr(4, 4)));
      cmd.push_back("1");
    }
    redis_->Run(cmd);
  }
  before = redis_->Snapshot();
  m = Merge(b, a);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(m.status().message(), "phone")) << m.status();
  EXPECT_EQ(redis_->Snapshot(), before);
}

// A crash before each step: the merge is left half done; a retry of the same call or the
// recovery pass finishes it with every event exactly once.
TEST_F(MergeEngineTest, ACrashBeforeAnyStepIsFinishedByARetryOrRecovery) {
  const std::vector<std::string> steps = {"merge.lock",        "merge.stage", "merge.swap",
                                          "merge.identifiers", "merge.mark",  "merge.finish"};
  for (size_t i = 0; i < steps.size(); ++i) {
    for (bool by_retry : {true, false}) {
      SCOPED_TRACE(absl::StrCat(steps[i], by_retry ? " then retry" : " then recovery"));
      redis_->FlushAll();
      std::string a, b;
      TwoCustomers(&a, &b);
      MergeEngine crashing(client_.get(), [&](const std::string& s) { return s == steps[i]; });
      auto m = Merge(&crashing, b, a);
      ASSERT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
      if (i > 0) {
        // Both customers are held: writes wait for the merge to finish.
        EXPECT_EQ(Append(a, {Ev("during", now_)}).status().code(), absl::StatusCode::kAborted);
      }
      MergeEngine restarted(client_.get());
      if (by_retry) {
        auto r = Merge(&restarted, b, a);
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(r->record.events_moved(), 2);  // counted once, whichever run staged
      } else {
        auto n = Await<int>(
            [&](auto done) { restarted.RecoverPending(true, Deadline(), std::move(done)); });
        ASSERT_TRUE(n.ok()) << n.status();
        EXPECT_EQ(*n, 1);
      }
      EXPECT_EQ(EventIds(b), (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3"}));
      EXPECT_EQ(*Owner(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-1")), a);
      EXPECT_EQ(Profile(a)->identifiers_size(), 3);
      EXPECT_TRUE(Append(a, {Ev("after", now_ + 9000)}).ok());
      // A record the crash left before it locked anything is dropped by the recovery pass.
      ASSERT_TRUE(Await<int>([&](auto done) {
                    restarted.RecoverPending(true, Deadline(), std::move(done));
                  }).ok());
      EXPECT_EQ(redis_->Run({"SCARD", keys::PendingMergesKey()}).integer, 0);
      EXPECT_EQ(redis_->Run({"EXISTS", keys::CustomerKeys("acme", a).merge_staging("x")}).integer,
                0);
    }
  }
}

TEST_F(MergeEngineTest, ACrashDuringAnUnmergeIsFinishedByRecovery) {
  const std::vector<std::string> steps = {"unmerge.lock",    "unmerge.return",
                                          "unmerge.remove",  "unmerge.identifiers",
                                          "unmerge.release", "unmerge.finish"};
  for (const std::string& step : steps) {
    SCOPED_TRACE(step);
    redis_->FlushAll();
    std::string a, b;
    TwoCustomers(&a, &b);
    auto m = Merge(b, a);
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(Append(b, {Ev("later", now_ + 6000)}).ok());
    MergeEngine crashing(client_.get(), [&](const std::string& s) { return s == step; });
    ASSERT_EQ(Unmerge(&crashing, m->record.merge_id()).status().code(),
              absl::StatusCode::kUnavailable);
    MergeEngine restarted(client_.get());
    auto n =
        Await<int>([&](auto done) { restarted.RecoverPending(true, Deadline(), std::move(done)); });
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(EventIds(a), (std::vector<std::string>{"a1", "a2", "a3"}));
    EXPECT_EQ(EventIds(b), (std::vector<std::string>{"b1", "b2", "later"}));
    EXPECT_EQ(*Owner(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com")), b);
    auto twice = Unmerge(&restarted, m->record.merge_id());
    EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

TEST_F(MergeEngineTest, MergesInOppositeDirectionsAtOnceNeitherLoseNorLoop) {
  for (int round = 0; round < 20; ++round) {
    redis_->FlushAll();
    std::string a, b;
    TwoCustomers(&a, &b);
    absl::StatusOr<MergeEngine::Result> ab, ba;
    std::thread t1([&] { ab = Merge(a, b); });
    std::thread t2([&] { ba = Merge(b, a); });
    t1.join();
    t2.join();
    // One wins; the other is refused (ABORTED while the winner holds the locks, or
    // FAILED_PRECONDITION once its source is merged).
    ASSERT_NE(ab.ok(), ba.ok()) << ab.status() << " / " << ba.status();
    const absl::Status& lost = ab.ok() ? ba.status() : ab.status();
    EXPECT_TRUE(lost.code() == absl::StatusCode::kAborted ||
                lost.code() == absl::StatusCode::kFailedPrecondition)
        << lost;
    std::string root_a = *Await<std::string>(
        [&](auto done) { identity_->RootOf("acme", a, Deadline(), std::move(done)); });
    std::string root_b = *Await<std::string>(
        [&](auto done) { identity_->RootOf("acme", b, Deadline(), std::move(done)); });
    EXPECT_EQ(root_a, root_b);
    EXPECT_EQ(EventIds(a), (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3"}));
    auto n =
        Await<int>([&](auto done) { engine_->RecoverPending(true, Deadline(), std::move(done)); });
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(redis_->Run({"SCARD", keys::PendingMergesKey()}).integer, 0);
  }
}

TEST_F(MergeEngineTest, AMergeCallMeetingAnUnmergeOfThePairIsAborted) {
  std::string a, b;
  TwoCustomers(&a, &b);
  auto m = Merge(b, a);
  ASSERT_TRUE(m.ok());
  MergeEngine crashing(client_.get(), [](const std::string& s) { return s == "unmerge.return"; });
  ASSERT_EQ(Unmerge(&crashing, m->record.merge_id()).status().code(),
            absl::StatusCode::kUnavailable);
  auto during = Merge(b, a);
  EXPECT_EQ(during.status().code(), absl::StatusCode::kAborted) << during.status();
  ASSERT_TRUE(Await<int>([&](auto done) {
                engine_->RecoverPending(true, Deadline(), std::move(done));
              }).ok());
  EXPECT_EQ(EventIds(b), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(Profile(b)->customer_id(), b);
}

TEST_F(MergeEngineTest, AttributesStayWithinTheProfileLimit) {
  std::string a, b;
  TwoCustomers(&a, &b);
  for (const auto& c : {a, b}) {
    std::vector<std::string> cmd = {"HSET", keys::CustomerKeys("acme", c).profile()};
    for (int i = 0; i < 100; ++i) {
      cmd.push_back(absl::StrCat("attr:", c.substr(4, 3), i));
      cmd.push_back("v");
    }
    redis_->Run(cmd);
  }
  ASSERT_TRUE(Merge(b, a).ok());
  auto p = Profile(a);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->attributes_size(), identity::kMaxProfileAttributes);
  // The merged profile still takes updates.
  v1::Profile v;
  v.set_display_name("Ann");
  google::protobuf::FieldMask mask;
  mask.add_paths("display_name");
  auto updated = Await<v1::Profile>([&](auto done) {
    identity_->UpdateProfile("acme", a, v, mask, Deadline(), std::move(done));
  });
  EXPECT_TRUE(updated.ok()) << updated.status();
}

TEST_F(MergeEngineTest, PositionsInTheSourceSurviveAnUnmergeAndANewMerge) {
  std::string a, b;
  TwoCustomers(&a, &b);
  std::string b1_sid = redis_->Run({"HGET", keys::CustomerKeys("acme", b).dedup(), "b1"}).str;
  auto m = Merge(b, a);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(Unmerge(engine_.get(), m->record.merge_id()).ok());
  ASSERT_TRUE(Merge(b, a).ok());
  // A reader of b positioned after b1 goes on with what came after b1 in the merged timeline.
  auto after = Await<timeline::TimelineStore::Batch>([&](auto done) {
    timeline_->ReadAfter("acme", a, absl::StrCat(b, "|", b1_sid), 100, Deadline(), std::move(done));
  });
  ASSERT_TRUE(after.ok()) << after.status();
  std::vector<std::string> ids;
  for (const auto& e : after->events) ids.push_back(e.event_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"a2", "b2", "a3"}));
}

TEST_F(MergeEngineTest, ALastingFailureBeforeTheSwapGivesTheMergeUp) {
  std::string a, b;
  TwoCustomers(&a, &b);
  redis_->Run({"XADD", keys::CustomerKeys("acme", b).timeline(), "*", "e", "\xff"});
  auto m = Merge(b, a);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInternal) << m.status();
  // Neither customer is left held, nothing moved, no record waits for recovery.
  EXPECT_TRUE(Append(a, {Ev("after", now_ + 9000)}).ok());
  EXPECT_EQ(Profile(b)->customer_id(), b);
  EXPECT_EQ(redis_->Run({"SCARD", keys::PendingMergesKey()}).integer, 0);
  EXPECT_EQ(EventIds(a), (std::vector<std::string>{"a1", "a2", "a3", "after"}));
}

TEST_F(MergeEngineTest, PageTokensOfTheTargetStayValidThoseOfTheSourceAskToListAgain) {
  std::string a, b;
  TwoCustomers(&a, &b);
  auto first_page = [&](const std::string& c) {
    v1::ListRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(c);
    req.set_order(v1::ORDER_OLDEST_FIRST);
    req.set_page_size(1);
    return Await<v1::ListResponse>(
        [&](auto done) { timeline_->List(req, Deadline(), std::move(done)); });
  };
  auto next_page = [&](const std::string& c, const std::string& token) {
    v1::ListRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(c);
    req.set_order(v1::ORDER_OLDEST_FIRST);
    req.set_page_size(10);
    req.set_page_token(token);
    return Await<v1::ListResponse>(
        [&](auto done) { timeline_->List(req, Deadline(), std::move(done)); });
  };
  auto pa = first_page(a);
  auto pb = first_page(b);
  ASSERT_TRUE(pa.ok() && pb.ok());
  ASSERT_TRUE(Merge(b, a).ok());
  auto rest = next_page(a, pa->next_page_token());
  ASSERT_TRUE(rest.ok()) << rest.status();
  std::vector<std::string> ids;
  for (const auto& e : rest->events()) ids.push_back(e.event_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"b1", "a2", "b2", "a3"}));  // after a1
  auto stale = next_page(b, pb->next_page_token());
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition) << stale.status();
  EXPECT_TRUE(absl::StrContains(stale.status().message(), "list again")) << stale.status();
}

// Many merges, links and appends at once on overlapping customers. Afterwards every identifier
// has exactly one owner (which lists it) and every acknowledged event is on exactly one
// timeline, once.
TEST_F(MergeEngineTest, ConcurrentMergesLinksAndAppendsKeepOneOwnerAndEveryEventOnce) {
  constexpr int kCustomers = 8;
  std::vector<std::string> customers;
  for (int i = 0; i < kCustomers; ++i) {
    customers.push_back(NewCustomer(Id(v1::IDENTIFIER_TYPE_CRM_ID, absl::StrCat("crm-", i))));
  }
  absl::Mutex mu;
  std::set<std::string> acked;
  std::vector<v1::Identifier> linked;
  std::map<std::string, int> outcomes;
  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    for (int op = 0; op < 60; ++op) {
      const std::string& x = customers[rng() % kCustomers];
      const std::string& y = customers[rng() % kCustomers];
      int kind = rng() % 3;
      absl::Status st;
      if (kind == 0 && x != y) {
        st = Merge(x, y).status();
      } else if (kind == 1) {
        v1::Identifier id = Id(v1::IDENTIFIER_TYPE_PHONE, absl::StrCat("1415555", seed, op % 10));
        auto r = Link(x, id);
        st = r.status();
        if (r.ok()) {
          absl::MutexLock l(&mu);
          linked.push_back(id);
        }
      } else {
        std::string eid = absl::StrCat("e-", seed, "-", op);
        auto r = Append(x, {Ev(eid, now_ + op)});
        st = r.status();
        if (r.ok()) {
          absl::MutexLock l(&mu);
          acked.insert(eid);
        }
      }
      absl::MutexLock l(&mu);
      ++outcomes[absl::StrCat(kind, ":", absl::StatusCodeToString(st.code()))];
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) threads.emplace_back(worker, t + 1);
  for (auto& t : threads) t.join();
  for (const auto& [k, n] : outcomes) {
    std::cout << "outcome " << k << " x" << n << "\n";
    // Refusals are ABORTED (retry) or FAILED_PRECONDITION (merged, or owned by another);
    // never an internal error.
    EXPECT_TRUE(absl::EndsWith(k, ":OK") || absl::EndsWith(k, ":ABORTED") ||
                absl::EndsWith(k, ":FAILED_PRECONDITION"))
        << k;
  }
  auto n =
      Await<int>([&](auto done) { engine_->RecoverPending(true, Deadline(), std::move(done)); });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(redis_->Run({"SCARD", keys::PendingMergesKey()}).integer, 0);

  // Roots: customers not merged into another.
  std::set<std::string> roots;
  for (const auto& c : customers) {
    auto r = Await<std::string>(
        [&](auto done) { identity_->RootOf("acme", c, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok());
    roots.insert(*r);
    EXPECT_TRUE(
        redis_->Run({"HGET", keys::CustomerKeys("acme", c).profile(), "merge_lock"}).is_nil());
  }
  // Every identifier: its index names a customer whose root lists it, and no other root does.
  std::map<std::string, int> listed;
  for (const auto& r : roots) {
    auto ids = redis_->Run({"HKEYS", keys::CustomerKeys("acme", r).identifiers()});
    for (const auto& f : ids.elements) ++listed[f.str];
  }
  for (int i = 0; i < kCustomers; ++i) {
    EXPECT_EQ(listed[absl::StrCat("crm:crm-", i)], 1) << i;
  }
  for (const auto& id : linked) {
    std::string field = absl::StrCat("phone:", id.value());
    EXPECT_EQ(listed[field], 1) << field;
    auto owner = Owner(id);
    ASSERT_TRUE(owner.ok()) << field;
    auto listed_by =
        redis_->Run({"HEXISTS", keys::CustomerKeys("acme", *owner).identifiers(), field});
    EXPECT_EQ(listed_by.integer, 1) << field;
  }
  // Every acknowledged event exactly once across the roots' timelines.
  std::map<std::string, int> seen;
  for (const auto& r : roots) {
    for (const auto& e : EventIds(r)) ++seen[e];
  }
  for (const auto& e : acked) EXPECT_EQ(seen[e], 1) << e;
  for (const auto& [e, count] : seen) EXPECT_EQ(count, 1) << e;
}

}  // namespace
}  // namespace onestory::merge
