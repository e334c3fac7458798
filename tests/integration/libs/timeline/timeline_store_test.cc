// TimelineStore and ContextStore against a real redis-server.
#include "libs/timeline/timeline_store.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/match.h"
#include "libs/common/time_util.h"
#include "libs/context/context_store.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/redis_test.h"

namespace onestory::timeline {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisForTest;

v1::Event MakeEvent(const std::string& id, v1::Channel channel, v1::EventKind kind,
                    int64_t occurred_ms = 0, const std::string& conversation = "") {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(channel);
  e.set_kind(kind);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_summary("summary of " + id);
  if (occurred_ms) *e.mutable_occurred_at() = FromMillis(occurred_ms);
  e.set_conversation_id(conversation);
  return e;
}

class TimelineStoreTest : public onestory::testing::RedisTest {
 protected:
  void SetUp() override {
    RedisTest::SetUp();
    identity_ = std::make_unique<identity::IdentityStore>(client_.get());
    timeline_ = std::make_unique<TimelineStore>(client_.get(), identity_.get());
    context_ = std::make_unique<context::ContextStore>(client_.get(), identity_.get());
    v1::Identifier phone;
    phone.set_type(v1::IDENTIFIER_TYPE_PHONE);
    phone.set_value("14155550100");
    auto r = Await<identity::IdentityStore::Resolved>(
        [&](auto done) { identity_->Resolve("acme", phone, true, Deadline(), std::move(done)); });
    ASSERT_TRUE(r.ok());
    customer_ = r->customer_id;
  }

  absl::StatusOr<v1::AppendResponse> Append(std::vector<v1::Event> events) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer_);
    for (auto& e : events) *req.add_events() = std::move(e);
    return Await<v1::AppendResponse>(
        [&](auto done) { timeline_->Append(req, Deadline(), std::move(done)); });
  }

  absl::StatusOr<v1::ListResponse> List(v1::ListRequest req) {
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer_);
    return Await<v1::ListResponse>(
        [&](auto done) { timeline_->List(req, Deadline(), std::move(done)); });
  }

  std::unique_ptr<identity::IdentityStore> identity_;
  std::unique_ptr<TimelineStore> timeline_;
  std::unique_ptr<context::ContextStore> context_;
  std::string customer_;
};

TEST_F(TimelineStoreTest, AppendStoresBatchAndDeduplicatesRetries) {
  auto first = Append({MakeEvent("e1", v1::CHANNEL_CHATBOT, v1::EVENT_KIND_MESSAGE),
                       MakeEvent("e2", v1::CHANNEL_CHATBOT, v1::EVENT_KIND_MESSAGE)});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->results_size(), 2);
  EXPECT_FALSE(first->results(0).duplicate());
  EXPECT_EQ(first->results(0).event().customer_id(), customer_);
  EXPECT_FALSE(first->results(0).event().cursor().empty());

  // A retry of e2 with a new e3: e2 comes back as the stored copy, e3 is written.
  v1::Event changed = MakeEvent("e2", v1::CHANNEL_VOICE, v1::EVENT_KIND_NOTE);
  auto retry = Append({changed, MakeEvent("e3", v1::CHANNEL_SMS, v1::EVENT_KIND_MESSAGE)});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->results(0).duplicate());
  EXPECT_EQ(retry->results(0).event().channel(), v1::CHANNEL_CHATBOT);  // the stored one
  EXPECT_EQ(retry->results(0).event().cursor(), first->results(1).event().cursor());
  EXPECT_FALSE(retry->results(1).duplicate());
  EXPECT_EQ(redis_->Run({"XLEN", "os:{acme:c:" + customer_ + "}:tl"}).integer, 3);

  // A stored event between new ones: each result in its request's place.
  auto mixed = Append({MakeEvent("e4", v1::CHANNEL_SMS, v1::EVENT_KIND_MESSAGE),
                       MakeEvent("e1", v1::CHANNEL_VOICE, v1::EVENT_KIND_NOTE),
                       MakeEvent("e5", v1::CHANNEL_EMAIL, v1::EVENT_KIND_MESSAGE)});
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  ASSERT_EQ(mixed->results_size(), 3);
  EXPECT_FALSE(mixed->results(0).duplicate());
  EXPECT_EQ(mixed->results(0).event().event_id(), "e4");
  EXPECT_TRUE(mixed->results(1).duplicate());
  EXPECT_EQ(mixed->results(1).event().channel(), v1::CHANNEL_CHATBOT);  // the stored one
  EXPECT_EQ(mixed->results(1).event().cursor(), first->results(0).event().cursor());
  EXPECT_FALSE(mixed->results(2).duplicate());
  EXPECT_EQ(mixed->results(2).event().channel(), v1::CHANNEL_EMAIL);
  EXPECT_EQ(redis_->Run({"XLEN", "os:{acme:c:" + customer_ + "}:tl"}).integer, 5);
}

TEST_F(TimelineStoreTest, AppendByUnknownIdentifierCreatesOnlyWhenAsked) {
  v1::AppendRequest req;
  req.set_tenant("acme");
  req.mutable_customer()->mutable_identifier()->set_type(v1::IDENTIFIER_TYPE_CHAT_SESSION);
  req.mutable_customer()->mutable_identifier()->set_value("visitor-42");
  *req.add_events() = MakeEvent("", v1::CHANNEL_CHATBOT, v1::EVENT_KIND_MESSAGE);
  auto missing = Await<v1::AppendResponse>(
      [&](auto done) { timeline_->Append(req, Deadline(), std::move(done)); });
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  req.set_create_if_missing(true);
  auto created = Await<v1::AppendResponse>(
      [&](auto done) { timeline_->Append(req, Deadline(), std::move(done)); });
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_NE(created->customer_id(), customer_);
  EXPECT_TRUE(absl::StartsWith(created->results(0).event().event_id(), "ev_"));
}

TEST_F(TimelineStoreTest, ListPagesBothWaysWithFilters) {
  std::vector<v1::Event> events;
  for (int i = 0; i < 25; ++i) {
    events.push_back(MakeEvent("e" + std::to_string(i),
                               i % 2 ? v1::CHANNEL_VOICE : v1::CHANNEL_WEB_CHAT,
                               v1::EVENT_KIND_MESSAGE, 1700000000000 + i * 1000));
  }
  ASSERT_TRUE(Append(events).ok());
  for (auto order : {v1::ORDER_NEWEST_FIRST, v1::ORDER_OLDEST_FIRST}) {
    std::vector<std::string> seen;
    v1::ListRequest req;
    req.set_page_size(10);
    req.set_order(order);
    for (int page = 0; page < 10; ++page) {
      auto r = List(req);
      ASSERT_TRUE(r.ok()) << r.status();
      for (const auto& e : r->events()) seen.push_back(e.event_id());
      if (r->next_page_token().empty()) break;
      req.set_page_token(r->next_page_token());
    }
    ASSERT_EQ(seen.size(), 25u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 25u);
    EXPECT_EQ(seen.front(), order == v1::ORDER_NEWEST_FIRST ? "e24" : "e0");
  }
  v1::ListRequest voice;
  voice.add_channels(v1::CHANNEL_VOICE);
  *voice.mutable_occurred_after() = FromMillis(1700000000000 + 10 * 1000);
  *voice.mutable_occurred_before() = FromMillis(1700000000000 + 20 * 1000);
  auto r = List(voice);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> ids;
  for (const auto& e : r->events()) ids.push_back(e.event_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"e19", "e17", "e15", "e13", "e11"}));
  EXPECT_TRUE(r->next_page_token().empty());
}

TEST_F(TimelineStoreTest, ReadAfterAndHeadServeWatch) {
  auto appended = Append({MakeEvent("a", v1::CHANNEL_EMAIL, v1::EVENT_KIND_MESSAGE),
                          MakeEvent("b", v1::CHANNEL_EMAIL, v1::EVENT_KIND_MESSAGE),
                          MakeEvent("c", v1::CHANNEL_EMAIL, v1::EVENT_KIND_MESSAGE)});
  ASSERT_TRUE(appended.ok());
  auto head = Await<std::string>(
      [&](auto done) { timeline_->Head("acme", customer_, Deadline(), std::move(done)); });
  ASSERT_TRUE(head.ok());
  auto all = Await<TimelineStore::Batch>([&](auto done) {
    timeline_->ReadAfter("acme", customer_, "0-0", 2, Deadline(), std::move(done));
  });
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->events.size(), 2u);
  EXPECT_EQ(all->events[0].event_id(), "a");
  auto rest = Await<TimelineStore::Batch>([&](auto done) {
    timeline_->ReadAfter("acme", customer_, all->last_stream_id, 10, Deadline(), std::move(done));
  });
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->events.size(), 1u);
  EXPECT_EQ(rest->events[0].event_id(), "c");
  EXPECT_EQ(rest->last_stream_id, *head);
  auto unknown = Await<std::string>(
      [&](auto done) { timeline_->Head("acme", "cus_nobody", Deadline(), std::move(done)); });
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TimelineStoreTest, ContextShowsEveryChannelLastActivityAndOpenConversations) {
  int64_t now = NowMillis();
  ASSERT_TRUE(
      Append(
          {MakeEvent("chat1", v1::CHANNEL_CHATBOT, v1::EVENT_KIND_MESSAGE, now - 600000, "chat-1"),
           MakeEvent("chat2", v1::CHANNEL_CHATBOT, v1::EVENT_KIND_MESSAGE, now - 590000, "chat-1"),
           MakeEvent("call1", v1::CHANNEL_VOICE, v1::EVENT_KIND_CALL_STARTED, now - 1000,
                     "call-1")})
          .ok());
  v1::GetContextRequest req;
  req.set_tenant("acme");
  req.mutable_customer()->mutable_identifier()->set_type(v1::IDENTIFIER_TYPE_PHONE);
  req.mutable_customer()->mutable_identifier()->set_value("+1 415 555 0100");
  auto get = [&] {
    absl::StatusOr<v1::GetContextResponse> ctx = Await<v1::GetContextResponse>(
        [&](auto done) { context_->GetContext(req, Deadline(), std::move(done)); });
    if (ctx.ok()) *ctx = context::WithDecodedEvents(*ctx);
    return ctx;
  };
  auto ctx = get();
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(ctx->profile().customer_id(), customer_);
  ASSERT_EQ(ctx->recent_events_size(), 3);
  EXPECT_EQ(ctx->recent_events(0).event_id(), "call1");
  EXPECT_EQ(ctx->last_activity().channel(), v1::CHANNEL_VOICE);
  EXPECT_EQ(ctx->channels_size(), 2);
  EXPECT_EQ(ctx->total_events(), 3);
  ASSERT_EQ(ctx->open_conversations_size(), 2);
  EXPECT_EQ(ctx->open_conversations(0).conversation_id(), "call-1");
  EXPECT_EQ(ctx->open_conversations(1).event_count(), 2);

  ASSERT_TRUE(
      Append({MakeEvent("call2", v1::CHANNEL_VOICE, v1::EVENT_KIND_CALL_ENDED, now, "call-1")})
          .ok());
  ctx = get();
  ASSERT_TRUE(ctx.ok());
  ASSERT_EQ(ctx->open_conversations_size(), 1);
  EXPECT_EQ(ctx->open_conversations(0).conversation_id(), "chat-1");
  req.set_recent_events(1);
  ctx = get();
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->recent_events_size(), 1);
}

}  // namespace
}  // namespace onestory::timeline
