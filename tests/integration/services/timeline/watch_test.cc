// TimelineService.Watch over real gRPC against a real redis-server: replay and live push,
// resume from a cursor with no gap or duplicate, a watch on one instance seeing appends made
// through another, a slow watcher ended with RESOURCE_EXHAUSTED, shutdown ending watches with
// UNAVAILABLE, and a watch that survives a Redis restart.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/server_for_test.h"

namespace onestory {
namespace {

using testing::RedisForTest;
using testing::ServerForTest;

v1::Event MakeEvent(const std::string& id, size_t body_bytes = 0) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_WEB_CHAT);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_body(std::string(body_bytes, 'x'));
  return e;
}

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisForTest>();
    service::TimelineServiceOptions opts;
    opts.watch_max_lag = absl::Milliseconds(1500);
    server_ = std::make_unique<ServerForTest>(*redis_, opts);
    customer_ = NewCustomer(v1::IDENTIFIER_TYPE_PHONE, "14155550100");
    ASSERT_FALSE(customer_.empty());
  }

  // The id of the customer named by an identifier, created; empty (and the test failed) when
  // Resolve fails.
  std::string NewCustomer(v1::IdentifierType type, const std::string& value) {
    v1::ResolveRequest req;
    req.set_tenant("acme");
    req.mutable_identifier()->set_type(type);
    req.mutable_identifier()->set_value(value);
    req.set_create_if_missing(true);
    v1::ResolveResponse resp;
    grpc::Status st = server_->identity()->Resolve(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.customer_id();
  }

  std::vector<v1::Event> Append(v1::TimelineService::Stub* stub, std::vector<v1::Event> events) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer_);
    for (auto& e : events) *req.add_events() = std::move(e);
    v1::AppendResponse resp;
    grpc::Status st = stub->Append(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<v1::Event> out;
    for (const auto& r : resp.results()) out.push_back(r.event());
    return out;
  }

  struct Watcher {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader;
  };
  Watcher Watch(v1::TimelineService::Stub* stub, const std::string& after_cursor,
                bool from_start = false, absl::Duration timeout = absl::Seconds(20),
                v1::Audience audience = v1::AUDIENCE_UNSPECIFIED) {
    v1::WatchRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer_);
    req.set_after_cursor(after_cursor);
    req.set_from_start(from_start);
    req.set_audience(audience);
    Watcher w;
    w.ctx = Ctx(timeout);
    w.reader = stub->Watch(w.ctx.get(), req);
    return w;
  }

  std::vector<std::string> ReadIds(Watcher& w, size_t n, std::string* last_cursor = nullptr) {
    std::vector<std::string> ids;
    v1::WatchResponse msg;
    while (ids.size() < n && w.reader->Read(&msg)) {
      ids.push_back(msg.event().event_id());
      if (last_cursor) *last_cursor = msg.event().cursor();
    }
    return ids;
  }

  // Function calls Redis has run (INFO commandstats: FCALL and FCALL_RO).
  int64_t FunctionCalls() { return CommandCalls("cmdstat_fcall"); }
  // Timeline reads: XRANGE and XREVRANGE, run by the range function.
  int64_t RangeReads() {
    return CommandCalls("cmdstat_xrange") + CommandCalls("cmdstat_xrevrange");
  }
  // The calls of the commands whose INFO commandstats line starts with `prefix`.
  int64_t CommandCalls(absl::string_view prefix) {
    redis::Reply info = redis_->Run({"INFO", "commandstats"});
    int64_t calls = 0;
    for (absl::string_view line : absl::StrSplit(info.str, "\r\n")) {
      if (!absl::StartsWith(line, prefix)) continue;
      size_t at = line.find("calls=");
      int64_t n = 0;
      if (at != absl::string_view::npos &&
          absl::SimpleAtoi(line.substr(at + 6, line.find(',', at) - at - 6), &n)) {
        calls += n;
      }
    }
    return calls;
  }

  std::unique_ptr<RedisForTest> redis_;
  std::unique_ptr<ServerForTest> server_;
  std::string customer_;
};

TEST_F(WatchTest, ReplaysFromStartThenStreamsLive) {
  Append(server_->timeline(), {MakeEvent("old1"), MakeEvent("old2")});
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true);
  EXPECT_EQ(ReadIds(w, 2), (std::vector<std::string>{"old1", "old2"}));
  Append(server_->timeline(), {MakeEvent("new1")});
  Append(server_->timeline(), {MakeEvent("new2"), MakeEvent("new3")});
  EXPECT_EQ(ReadIds(w, 3), (std::vector<std::string>{"new1", "new2", "new3"}));
  w.ctx->TryCancel();
}

TEST_F(WatchTest, WithoutCursorStreamsOnlyNewEvents) {
  Append(server_->timeline(), {MakeEvent("before")});
  Watcher w = Watch(server_->timeline(), "");
  // The stream's initial metadata comes once its start is fixed: an append made right after it
  // is streamed.
  w.reader->WaitForInitialMetadata();
  EXPECT_EQ(w.ctx->GetServerInitialMetadata().count("onestory-stream"), 1u);
  Append(server_->timeline(), {MakeEvent("after")});
  EXPECT_EQ(ReadIds(w, 1), (std::vector<std::string>{"after"}));
  w.ctx->TryCancel();
}

TEST_F(WatchTest, EveryAppendAfterTheStreamOpensIsStreamed) {
  // Each watch is opened and, as soon as it is open, appended to (a client that opens the
  // stream, then records what it does): none of these events may be missed.
  for (int i = 0; i < 20; ++i) {
    Watcher w = Watch(server_->timeline(), "");
    w.reader->WaitForInitialMetadata();
    std::string id = absl::StrCat("right-after-", i);
    Append(server_->timeline(), {MakeEvent(id)});
    EXPECT_EQ(ReadIds(w, 1), std::vector<std::string>{id}) << "watch " << i;
    w.ctx->TryCancel();
  }
}

TEST_F(WatchTest, ResumesFromCursorWithoutGapOrDuplicate) {
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true);
  Append(server_->timeline(), {MakeEvent("e1"), MakeEvent("e2")});
  std::string cursor;
  ASSERT_EQ(ReadIds(w, 2, &cursor), (std::vector<std::string>{"e1", "e2"}));
  w.ctx->TryCancel();
  Append(server_->timeline(), {MakeEvent("e3"), MakeEvent("e4")});
  Watcher again = Watch(server_->timeline(), cursor);
  Append(server_->timeline(), {MakeEvent("e5")});
  EXPECT_EQ(ReadIds(again, 3), (std::vector<std::string>{"e3", "e4", "e5"}));
  again.ctx->TryCancel();
}

TEST_F(WatchTest, SeesAppendsMadeThroughAnotherInstance) {
  ServerForTest other(*redis_);
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true);
  Append(other.timeline(), {MakeEvent("via-other")});
  EXPECT_EQ(ReadIds(w, 1), (std::vector<std::string>{"via-other"}));
  w.ctx->TryCancel();
}

// Events the watcher may not see are passed over once, however many come in a row: more than a
// read's batch of them must not stop the events after them (replayed or live), nor be re-read.
TEST_F(WatchTest, PassesOverRunsOfEventsItsAudienceMayNotSee) {
  service::TimelineServiceOptions opts;
  opts.watch_batch = 3;
  ServerForTest small_batches(*redis_, opts);
  auto internal = [](const std::string& id) {
    v1::Event e = MakeEvent(id);
    e.set_visibility(v1::AUDIENCE_AGENT);
    return e;
  };
  auto shown = [](const std::string& id) {
    v1::Event e = MakeEvent(id);
    e.set_visibility(v1::AUDIENCE_CUSTOMER);
    return e;
  };
  Append(server_->timeline(), {internal("i1"), internal("i2"), internal("i3"), internal("i4"),
                               internal("i5"), shown("replayed")});
  Watcher w = Watch(small_batches.timeline(), "", /*from_start=*/true, absl::Seconds(20),
                    v1::AUDIENCE_CUSTOMER);
  EXPECT_EQ(ReadIds(w, 1), (std::vector<std::string>{"replayed"}));
  for (int i = 0; i < 7; ++i) Append(server_->timeline(), {internal(absl::StrCat("live-i", i))});
  Append(server_->timeline(), {shown("live")});
  EXPECT_EQ(ReadIds(w, 1), (std::vector<std::string>{"live"}));
  w.ctx->TryCancel();
  if (redis_->cluster()) return;  // the count below is one node's
  // Idle now: the watcher reads nothing more (no read repeated over the passed-over events).
  absl::SleepFor(absl::Milliseconds(300));
  int64_t before = FunctionCalls();
  absl::SleepFor(absl::Seconds(1));
  EXPECT_LE(FunctionCalls(), before + 2);
}

// An append of one event publishes the entry, and a caught-up watcher sends it as published:
// watchers that start while appends go on (replaying from the start, or from the head) get each
// event once, in order, whichever way it reached them (read back or published).
TEST_F(WatchTest, EveryEventOnceInOrderWhileAppendsGoOn) {
  ServerForTest other(*redis_);
  constexpr int kEvents = 300;
  std::vector<std::string> all;
  for (int i = 0; i < kEvents; ++i) all.push_back(absl::StrCat("r", i));
  std::atomic<int> appended{0};
  std::thread writer([&] {
    for (int i = 0; i < kEvents; ++i) {
      Append(server_->timeline(), {MakeEvent(all[i])});
      ++appended;
    }
  });
  while (appended.load() < 50) absl::SleepFor(absl::Milliseconds(1));
  Watcher replay = Watch(other.timeline(), "", /*from_start=*/true, absl::Seconds(60));
  Watcher live = Watch(other.timeline(), "", /*from_start=*/false, absl::Seconds(60));
  writer.join();
  EXPECT_EQ(ReadIds(replay, kEvents), all);
  // The live watcher starts at the head its subscription found: a contiguous tail.
  Append(server_->timeline(), {MakeEvent("last")});
  std::vector<std::string> tail;
  v1::WatchResponse msg;
  while (live.reader->Read(&msg) && msg.event().event_id() != "last") {
    tail.push_back(msg.event().event_id());
  }
  ASSERT_LE(tail.size(), all.size());
  EXPECT_EQ(tail, std::vector<std::string>(all.end() - tail.size(), all.end()));
  EXPECT_EQ(msg.event().event_id(), "last");
  replay.ctx->TryCancel();
  live.ctx->TryCancel();
}

// A caught-up watcher is sent each single-event append as published: no read per event.
TEST_F(WatchTest, LiveEventsArriveWithoutAReadEach) {
  if (redis_->cluster()) GTEST_SKIP() << "counts one node's commands";
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true);
  Append(server_->timeline(), {MakeEvent("first")});
  ASSERT_EQ(ReadIds(w, 1), (std::vector<std::string>{"first"}));
  absl::SleepFor(absl::Milliseconds(200));
  int64_t reads = RangeReads();
  for (int i = 0; i < 20; ++i) {
    Append(server_->timeline(), {MakeEvent(absl::StrCat("e", i))});
    ASSERT_EQ(ReadIds(w, 1), (std::vector<std::string>{absl::StrCat("e", i)}));
  }
  EXPECT_EQ(RangeReads(), reads);
  // A batch of several events is published as its newest id: the watcher reads them.
  Append(server_->timeline(), {MakeEvent("b1"), MakeEvent("b2")});
  EXPECT_EQ(ReadIds(w, 2), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(RangeReads(), reads + 1);
  w.ctx->TryCancel();
}

// A merge gives the entries it brings ids just after the target's newest: a live watcher of a
// target whose newest event is older than the lag limit receives them, and is not ended as if
// it had fallen behind.
TEST_F(WatchTest, AMergeIntoAQuietTimelineDoesNotEndItsWatchers) {
  std::string target = customer_;
  Append(server_->timeline(), {MakeEvent("a-old")});
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true, absl::Seconds(30));
  ASSERT_EQ(ReadIds(w, 1), (std::vector<std::string>{"a-old"}));
  absl::SleepFor(absl::Seconds(2));  // past the 1.5 s lag limit
  std::string source = NewCustomer(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  customer_ = source;
  Append(server_->timeline(), {MakeEvent("b-1")});
  customer_ = target;
  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(source);
  mreq.set_target_customer_id(target);
  mreq.set_reason("the same person");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
  v1::MergeResponse mresp;
  grpc::Status merged = server_->identity()->Merge(Ctx().get(), mreq, &mresp);
  ASSERT_TRUE(merged.ok()) << merged.error_message();
  EXPECT_EQ(ReadIds(w, 1), (std::vector<std::string>{"b-1"}));
  Append(server_->timeline(), {MakeEvent("a-new")});
  EXPECT_EQ(ReadIds(w, 1), (std::vector<std::string>{"a-new"}));
  w.ctx->TryCancel();
  grpc::Status st = w.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
}

TEST_F(WatchTest, RejectsCursorOfAnotherCustomer) {
  auto events = Append(server_->timeline(), {MakeEvent("mine")});
  customer_ = NewCustomer(v1::IDENTIFIER_TYPE_EMAIL, "other@example.com");
  Watcher w = Watch(server_->timeline(), events[0].cursor());
  v1::WatchResponse msg;
  EXPECT_FALSE(w.reader->Read(&msg));
  grpc::Status st = w.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "another customer")) << st.error_message();
}

TEST_F(WatchTest, SlowWatcherIsEndedWithResourceExhaustedAndCanResume) {
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true, absl::Seconds(60));
  // Read one event to be sure the watch is live, then stop reading while ~8 MB arrive, more
  // than HTTP/2 flow control and socket buffers hold, so the server's writes stall.
  Append(server_->timeline(), {MakeEvent("first")});
  std::string cursor;
  ASSERT_EQ(ReadIds(w, 1, &cursor), (std::vector<std::string>{"first"}));
  for (int batch = 0; batch < 16; ++batch) {
    std::vector<v1::Event> events;
    for (int i = 0; i < 8; ++i) {
      events.push_back(MakeEvent(absl::StrCat("bulk-", batch, "-", i), 60 * 1024));
    }
    Append(server_->timeline(), std::move(events));
  }
  absl::SleepFor(absl::Seconds(4));  // past the 1.5 s lag limit and a tick
  size_t received = 0;
  v1::WatchResponse msg;
  while (w.reader->Read(&msg)) {
    ++received;
    cursor = msg.event().cursor();
  }
  grpc::Status st = w.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "after_cursor")) << st.error_message();
  ASSERT_LT(received, 128u);
  // Resuming from the last cursor received delivers the rest, in order, once each.
  Watcher again = Watch(server_->timeline(), cursor, false, absl::Seconds(60));
  std::vector<std::string> rest = ReadIds(again, 128 - received);
  ASSERT_EQ(rest.size(), 128 - received);
  std::set<std::string> unique(rest.begin(), rest.end());
  EXPECT_EQ(unique.size(), rest.size());
  EXPECT_EQ(rest.back(), "bulk-15-7");
  again.ctx->TryCancel();
}

TEST_F(WatchTest, ShutdownEndsWatchesWithUnavailable) {
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true);
  Append(server_->timeline(), {MakeEvent("e1")});
  ASSERT_EQ(ReadIds(w, 1).size(), 1u);
  server_->server()->Shutdown(absl::Seconds(2));
  v1::WatchResponse msg;
  while (w.reader->Read(&msg)) {
  }
  grpc::Status st = w.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST_F(WatchTest, KeepsStreamingAcrossARedisRestart) {
  if (redis_->cluster())
    GTEST_SKIP() << "a single Redis restarted (cluster faults: e2e_cluster_fault)";
  Watcher w = Watch(server_->timeline(), "", /*from_start=*/true, absl::Seconds(30));
  Append(server_->timeline(), {MakeEvent("before-restart")});
  ASSERT_EQ(ReadIds(w, 1), (std::vector<std::string>{"before-restart"}));
  redis_->Kill();
  redis_->Restart();  // appendonly everysec: the event above was written a moment ago
  // Appends fail with UNAVAILABLE until the client has reconnected; retry like a client would.
  bool appended = false;
  for (int i = 0; i < 100 && !appended; ++i) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer_);
    *req.add_events() = MakeEvent("after-restart");
    v1::AppendResponse resp;
    grpc::Status st = server_->timeline()->Append(Ctx().get(), req, &resp);
    if (st.ok()) {
      appended = true;
    } else {
      ASSERT_TRUE(st.error_code() == grpc::StatusCode::UNAVAILABLE ||
                  st.error_code() == grpc::StatusCode::NOT_FOUND)
          << st.error_message();
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  ASSERT_TRUE(appended);
  std::vector<std::string> ids = ReadIds(w, 1);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], "after-restart");
  w.ctx->TryCancel();
}

}  // namespace
}  // namespace onestory
