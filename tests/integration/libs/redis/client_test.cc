// The asynchronous Redis client against a real redis-server: pipelining, scripts, deadlines,
// failing fast while Redis is down, reconnecting, and pub/sub across a restart.
#include "libs/redis/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/redis/function_library.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisForTest;

// A small function library for the tests of the client itself: echo returns its argument,
// refuse answers as OneStory's functions refuse (OS_CONFLICT), busy keeps Redis busy for
// ARGV[1] microseconds.
constexpr char kTestLibraryCode[] =
    "#!lua name=client_test_v1\n"
    "redis.register_function('echo_v1', function(keys, args) return args[1] end)\n"
    "redis.register_function('refuse_v1', function(keys, args)\n"
    "  return redis.error_reply('OS_CONFLICT it belongs to cus_9')\n"
    "end)\n"
    "redis.register_function('busy_v1', function(keys, args)\n"
    "  local t = redis.call('TIME') local s = t[1] * 1000000 + t[2]\n"
    "  while true do local n = redis.call('TIME')\n"
    "    if n[1] * 1000000 + n[2] - s > tonumber(args[1]) then break end end\n"
    "  return 1\n"
    "end)\n";
constexpr FunctionLibrary::Source kTestSources[] = {{"libs/test/lua/client.lua", 2, 10}};
constexpr FunctionLibrary kTestLibrary{"client_test_v1", "v1", kTestLibraryCode, kTestSources};
constexpr Function kEcho{&kTestLibrary, "echo", false};
constexpr Function kRefuse{&kTestLibrary, "refuse", false};
constexpr Function kBusy{&kTestLibrary, "busy", false};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisForTest>();
    client_ = std::make_unique<Client>(redis_->ClientOptions());
    WaitConnected(true);
  }

  void WaitConnected(bool want) {
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (client_->connected() != want && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_EQ(client_->connected(), want);
  }

  absl::StatusOr<Reply> Run(std::vector<std::string> argv, absl::Time deadline = Deadline()) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Command(std::move(argv), deadline, std::move(done));
    });
  }

  std::unique_ptr<RedisForTest> redis_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, RunsCommandsAndMapsErrorReplies) {
  ASSERT_TRUE(Run({"SET", "k", "v"}).ok());
  absl::StatusOr<Reply> r = Run({"GET", "k"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "v");
  absl::StatusOr<Reply> bad = Run({"INCR", "k"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(bad.status().message().find("not an integer"), absl::string_view::npos);
}

TEST_F(ClientTest, PipelinesManyConcurrentCommandsInOrder) {
  constexpr int kCommands = 20000;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  absl::Notification all;
  for (int i = 0; i < kCommands; ++i) {
    client_->Command({"INCR", "counter"}, Deadline(absl::Seconds(30)),
                     [&](absl::StatusOr<Reply> r) {
                       if (r.ok() && r->type == Reply::Type::kInteger) ++ok;
                       if (++done == kCommands) all.Notify();
                     });
  }
  all.WaitForNotification();
  EXPECT_EQ(ok.load(), kCommands);
  EXPECT_EQ(redis_->Run({"GET", "counter"}).str, std::to_string(kCommands));
}

TEST_F(ClientTest, InPlaceSnapshotsAmongPipelinedArrayReplies) {
  // Snapshots read in place, snapshots read as Replies and plain array commands, all in flight
  // at once on the same connections: only the in-place snapshots' arrays come as views, each
  // with its own values.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Run({"RPUSH", absl::StrCat("list", i), "a", absl::StrCat("b", i)}).ok());
  }
  constexpr int kRounds = 300;
  std::atomic<int> done{0};
  std::atomic<int> wrong{0};
  absl::Notification all;
  auto finish = [&](bool right) {
    if (!right) ++wrong;
    if (++done == 3 * kRounds) all.Notify();
  };
  for (int r = 0; r < kRounds; ++r) {
    std::string list = absl::StrCat("list", r % 10);
    std::string last = absl::StrCat("b", r % 10);
    client_->Snapshot(
        {{"LRANGE", list, "0", "-1"}, {"LLEN", list}, {"GET", list}}, Deadline(),
        [&finish, last](absl::StatusOr<Reply> reply) {
          bool right = reply.ok() && reply->type == Reply::Type::kArrayView;
          if (right) {
            RespView::Value v = reply->view->root();
            right = v.size() == 3 && v[0].size() == 2 && v[0][1].str() == last &&
                    v[1].integer() == 2 && v[2].type() == Reply::Type::kError;
          }
          finish(right);
        },
        /*in_place=*/true);
    client_->Snapshot({{"LRANGE", list, "0", "-1"}}, Deadline(),
                      [&finish, last](absl::StatusOr<Reply> reply) {
                        finish(reply.ok() && reply->is_array() && reply->elements.size() == 1 &&
                               reply->elements[0].elements.size() == 2 &&
                               reply->elements[0].elements[1].str == last);
                      });
    client_->Command({"LRANGE", list, "0", "-1"}, Deadline(),
                     [&finish, last](absl::StatusOr<Reply> reply) {
                       finish(reply.ok() && reply->is_array() && reply->elements.size() == 2 &&
                              reply->elements[1].str == last);
                     });
  }
  all.WaitForNotification();
  EXPECT_EQ(wrong.load(), 0);
  // Refused as queued: the error, not a view.
  absl::StatusOr<Reply> refused = Await<Reply>([&](Callback<Reply> cb) {
    client_->Snapshot({{"LLEN", "list0"}, {"GET"}}, Deadline(), std::move(cb), /*in_place=*/true);
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInternal) << refused.status();
}

TEST_F(ClientTest, SnapshotReadsFromOneMomentAndOnlyReads) {
  absl::StatusOr<Reply> seeded = Run({"RPUSH", "list", "x"});
  ASSERT_TRUE(seeded.ok()) << seeded.status();
  auto snapshot = [&](std::vector<std::vector<std::string>> commands) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Snapshot(std::move(commands), Deadline(), std::move(done));
    });
  };
  // One reply per command; one that fails as it runs (WRONGTYPE) is an error in the array.
  absl::StatusOr<Reply> r = snapshot({{"LLEN", "list"}, {"GET", "list"}, {"GET", "none"}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 3u);
  EXPECT_EQ(r->elements[0].integer, 1);
  EXPECT_EQ(r->elements[1].type, Reply::Type::kError);
  EXPECT_TRUE(r->elements[2].is_nil());
  // A command Redis refuses as it is queued fails the whole snapshot.
  absl::StatusOr<Reply> refused = snapshot({{"LLEN", "list"}, {"GET"}});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInternal) << refused.status();
  EXPECT_NE(refused.status().message().find("wrong number of arguments"), absl::string_view::npos)
      << refused.status();
  // A write is refused before anything is sent.
  absl::StatusOr<Reply> write = snapshot({{"LLEN", "list"}, {"DEL", "list"}});
  EXPECT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument) << write.status();
  EXPECT_EQ(redis_->Run({"LLEN", "list"}).integer, 1);

  // Two keys always changed together (MULTI/EXEC) are always seen equal.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load())
      redis_->Run({"EVAL", "redis.call('INCR', 'a') redis.call('INCR', 'b')", "0"});
  });
  int unequal = 0;
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<Reply> ab = snapshot({{"GET", "a"}, {"GET", "b"}});
    ASSERT_TRUE(ab.ok()) << ab.status();
    if (ab->elements[0].str != ab->elements[1].str) ++unequal;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(unequal, 0);
}

TEST_F(ClientTest, FcallLoadsTheLibraryWhenMissingAndMapsFunctionErrors) {
  redis_->Run({"FUNCTION", "FLUSH"});
  auto r = Await<Reply>([&](Callback<Reply> done) {
    client_->Fcall(kEcho, {}, {"hello"}, Deadline(), std::move(done));
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "hello");
  auto refused = Await<Reply>(
      [&](Callback<Reply> done) { client_->Fcall(kRefuse, {}, {}, Deadline(), std::move(done)); });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(), "it belongs to cus_9");
}

TEST_F(ClientTest, CallerDeadlineGivesDeadlineExceededWithoutWaitingForRedis) {
  // A function that keeps Redis busy for ~400 ms; the caller allows 50 ms.
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  absl::Time start = absl::Now();
  auto r = Await<Reply>([&](Callback<Reply> done) {
    client_->Fcall(kBusy, {}, {"400000"}, absl::Now() + absl::Milliseconds(50), std::move(done));
  });
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(took, absl::Milliseconds(350)) << "the callback waited for the busy script";
  // The connection stays usable: the late reply is dropped, later replies match their commands.
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(Run({"SET", "after", "1"}).ok());
  auto after = Run({"GET", "after"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->str, "1");
}

TEST_F(ClientTest, FailsFastWhileRedisIsDownAndRecoversByItself) {
  redis_->Kill();
  WaitConnected(false);
  absl::Time start = absl::Now();
  auto r = Run({"PING"}, Deadline(absl::Seconds(30)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << "a call hung while Redis was down";

  redis_->Restart();
  WaitConnected(true);
  auto back = Run({"PING"});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->str, "PONG");
  EXPECT_GE(client_->reconnects(), 1u);
}

TEST_F(ClientTest, InFlightCommandsFailWithUnavailableWhenTheConnectionDies) {
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  absl::Notification done;
  absl::Status status;
  client_->Fcall(kBusy, {}, {"300000"}, Deadline(absl::Seconds(30)), [&](absl::StatusOr<Reply> r) {
    status = r.status();
    done.Notify();
  });
  absl::SleepFor(absl::Milliseconds(100));
  redis_->Kill();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST_F(ClientTest, AuthenticatesAndTreatsARefusedPasswordAsDown) {
  redis_->Run({"CONFIG", "SET", "requirepass", "s3cret"});
  Options wrong = redis_->ClientOptions();
  wrong.password = "nope";
  Client refused(wrong);
  absl::SleepFor(absl::Milliseconds(300));
  auto r = Await<Reply>(
      [&](Callback<Reply> done) { refused.Command({"PING"}, Deadline(), std::move(done)); });
  EXPECT_FALSE(r.ok());
  // A refused AUTH closes the connection (and retries with backoff): it is up at most for the
  // moment between connecting and the refusal.
  int up = 0;
  for (int i = 0; i < 50; ++i) {
    up += refused.connected() ? 1 : 0;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_LT(up, 25);

  Options right = redis_->ClientOptions();
  right.password = "s3cret";
  Client accepted(right);
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!accepted.connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  auto ok = Await<Reply>(
      [&](Callback<Reply> done) { accepted.Command({"PING"}, Deadline(), std::move(done)); });
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->str, "PONG");
  // Leave the server as the other tests expect it.
  EXPECT_TRUE(accepted.CommandSync({"CONFIG", "SET", "requirepass", ""}).ok());
}

}  // namespace
}  // namespace onestory::redis
