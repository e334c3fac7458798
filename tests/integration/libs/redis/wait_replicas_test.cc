// Options::wait_replicas against a real primary and replica (two redis-servers, the second
// started with REPLICAOF the first): a write is answered once the replica has it; with the
// replica stopped (SIGSTOP) or killed, writes answer UNAVAILABLE after the WAIT timeout (or at
// the caller's deadline) while reads on the same client are served at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/redis/client.h"
#include "libs/redis/function_library.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisForTest;
using ::testing::HasSubstr;

// set_v1 SETs KEYS[1] to ARGV[1]; get_v1 (no-writes: called with FCALL_RO) GETs it.
constexpr char kTestLibraryCode[] =
    "#!lua name=wait_test_v1\n"
    "redis.register_function('set_v1', function(keys, args)\n"
    "  return redis.call('SET', keys[1], args[1])\n"
    "end)\n"
    "redis.register_function{function_name='get_v1', flags={'no-writes'},\n"
    "  callback=function(keys, args) return redis.call('GET', keys[1]) end}\n";
constexpr FunctionLibrary::Source kTestSources[] = {{"libs/test/lua/wait.lua", 2, 6}};
constexpr FunctionLibrary kTestLibrary{"wait_test_v1", "v1", kTestLibraryCode, kTestSources};
constexpr Function kSet{&kTestLibrary, "set", false};
constexpr Function kGet{&kTestLibrary, "get", true};

// The process id a redis-server reports (INFO server), to stop and continue it.
pid_t ProcessId(RedisForTest& redis) {
  for (absl::string_view line : absl::StrSplit(redis.Run({"INFO", "server"}).str, "\r\n")) {
    int pid = 0;
    if (absl::ConsumePrefix(&line, "process_id:") && absl::SimpleAtoi(line, &pid)) return pid;
  }
  ADD_FAILURE() << "no process_id in INFO server";
  return 0;
}

// One asynchronous call's outcome, and when it came.
struct Outcome {
  absl::Notification done;
  absl::StatusOr<Reply> result = absl::UnknownError("not answered");
  absl::Time at;
  ReplyCallback Callback() {
    return [this](absl::StatusOr<Reply> r) {
      result = std::move(r);
      at = absl::Now();
      done.Notify();
    };
  }
};

class WaitReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    primary_ = std::make_unique<RedisForTest>();
    replica_ = std::make_unique<RedisForTest>();
    // Sync at once (not after the default 5 s of waiting for more replicas).
    primary_->Run({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
    // No append-only file on the replica: after a sync it rewrites it, and a redis-server
    // doing so refuses to shut down when the test ends.
    replica_->Run({"CONFIG", "SET", "appendonly", "no"});
    ASSERT_EQ(replica_->Run({"REPLICAOF", "127.0.0.1", std::to_string(primary_->port())}).str,
              "OK");
    // Until the primary counts the replica online: after a diskless sync it does so only once
    // the replica's first REPLCONF ACK arrives (up to a second after its link is up), and WAIT
    // counts no replica before that.
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (replica_->Run({"INFO", "replication"}).str.find("master_link_status:up") ==
               std::string::npos ||
           primary_->Run({"INFO", "replication"}).str.find("state=online") ==
               std::string::npos) {
      ASSERT_LT(absl::Now(), give_up) << "the replica did not sync";
      absl::SleepFor(absl::Milliseconds(20));
    }
    replica_pid_ = ProcessId(*replica_);
  }
  void TearDown() override {
    Continue();  // a stopped redis-server would not stop on SIGTERM
    client_.reset();
    replica_.reset();
    primary_.reset();
  }

  void StartClient(int wait_replicas, absl::Duration wait_timeout) {
    Options o = primary_->ClientOptions();
    o.wait_replicas = wait_replicas;
    o.wait_timeout = wait_timeout;
    client_ = std::make_unique<Client>(o);
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!client_->connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_TRUE(client_->connected());
  }

  void Stop() {
    ASSERT_GT(replica_pid_, 0);  // kill(0, ...) would stop the whole process group
    ASSERT_EQ(kill(replica_pid_, SIGSTOP), 0);
    stopped_ = true;
  }
  void Continue() {
    if (!stopped_) return;
    kill(replica_pid_, SIGCONT);
    stopped_ = false;
    EXPECT_EQ(replica_->Run({"PING"}).str, "PONG");
  }

  absl::StatusOr<Reply> Run(std::vector<std::string> argv, absl::Time deadline = Deadline()) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Command(std::move(argv), deadline, std::move(done));
    });
  }
  absl::StatusOr<Reply> Fcall(const Function& f, std::string key, std::vector<std::string> args) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Fcall(f, {std::move(key)}, std::move(args), Deadline(), std::move(done));
    });
  }

  std::unique_ptr<RedisForTest> primary_;
  std::unique_ptr<RedisForTest> replica_;
  std::unique_ptr<Client> client_;
  pid_t replica_pid_ = 0;
  bool stopped_ = false;
};

TEST_F(WaitReplicasTest, WriteIsAnsweredOnceTheReplicaHasIt) {
  StartClient(1, absl::Seconds(2));
  // Every kind of write the client sends, answered only when the replica holds it.
  std::vector<std::vector<std::string>> writes = {
      {"SET", "s", "1"},       {"HSET", "h", "f", "1"}, {"XADD", "x", "*", "f", "1"},
      {"ZADD", "z", "1", "m"}, {"SADD", "set", "m"},    {"EXPIRE", "s", "100"},
      {"HDEL", "h", "f"},      {"DEL", "set"},
  };
  for (const auto& w : writes) {
    absl::StatusOr<Reply> r = Run(w);
    ASSERT_TRUE(r.ok()) << w[0] << ": " << r.status();
  }
  for (int i = 0; i < 50; ++i) {
    std::string value = absl::StrCat("v", i);
    ASSERT_TRUE(Fcall(kSet, "fk", {value}).ok());
    ASSERT_EQ(replica_->Run({"GET", "fk"}).str, value);
  }
  EXPECT_GT(replica_->Run({"TTL", "s"}).integer, 90);
  EXPECT_EQ(replica_->Run({"XLEN", "x"}).integer, 1);
  EXPECT_EQ(replica_->Run({"EXISTS", "h"}).integer, 0);

  // A replica that is slow to take the write holds the answer back until it has.
  for (bool function : {false, true}) {
    Stop();
    Outcome write;
    absl::Time sent = absl::Now();
    if (function) {
      client_->Fcall(kSet, {"slow"}, {"fn"}, Deadline(), write.Callback());
    } else {
      client_->Command({"SET", "slow", "cmd"}, Deadline(), write.Callback());
    }
    EXPECT_FALSE(write.done.WaitForNotificationWithTimeout(absl::Milliseconds(300)))
        << "answered before the replica had the write";
    Continue();
    ASSERT_TRUE(write.done.WaitForNotificationWithTimeout(absl::Seconds(3)));
    ASSERT_TRUE(write.result.ok()) << write.result.status();
    EXPECT_EQ(replica_->Run({"GET", "slow"}).str, function ? "fn" : "cmd");
    std::cerr << "[wait] answered " << absl::FormatDuration(write.at - sent)
              << " after the write, the replica stopped for 300 ms\n";
  }
}

TEST_F(WaitReplicasTest, WithoutWaitReplicasWritesAreNotHeldBack) {
  StartClient(0, absl::Seconds(2));
  Stop();
  absl::Time sent = absl::Now();
  ASSERT_TRUE(Run({"SET", "k", "v"}).ok());
  EXPECT_LT(absl::Now() - sent, absl::Milliseconds(100));
}

TEST_F(WaitReplicasTest, StoppedReplicaFailsWritesAfterTheTimeoutReadsAreServed) {
  constexpr absl::Duration kTimeout = absl::Milliseconds(300);
  StartClient(1, kTimeout);
  ASSERT_TRUE(Fcall(kSet, "read", {"before"}).ok());
  Stop();
  // Many writes at once: they share WAITs, so none waits for much more than two timeouts.
  constexpr int kWrites = 40;
  std::vector<std::unique_ptr<Outcome>> writes;
  absl::Time sent = absl::Now();
  for (int i = 0; i < kWrites; ++i) {
    writes.push_back(std::make_unique<Outcome>());
    if (i % 2 == 0) {
      client_->Command({"HSET", "h", absl::StrCat("f", i), "1"}, Deadline(),
                       writes.back()->Callback());
    } else {
      client_->Fcall(kSet, {absl::StrCat("k", i)}, {"1"}, Deadline(), writes.back()->Callback());
    }
    if (i == kWrites / 2) absl::SleepFor(absl::Milliseconds(50));
  }
  // Reads meanwhile: GET, FCALL_RO, HGETALL, none queued behind a WAIT.
  absl::SleepFor(absl::Milliseconds(20));
  for (int i = 0; i < 20; ++i) {
    absl::Time start = absl::Now();
    absl::StatusOr<Reply> get = Run({"GET", "read"});
    absl::StatusOr<Reply> ro = Fcall(kGet, "read", {});
    absl::StatusOr<Reply> all = Run({"HGETALL", "h"});
    ASSERT_TRUE(get.ok() && ro.ok() && all.ok());
    EXPECT_EQ(get->str, "before");
    EXPECT_EQ(ro->str, "before");
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(100)) << "a read waited";
  }
  absl::Duration fastest = absl::InfiniteDuration(), slowest = absl::ZeroDuration();
  for (auto& w : writes) {
    ASSERT_TRUE(w->done.WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_EQ(w->result.status().code(), absl::StatusCode::kUnavailable) << w->result.status();
    EXPECT_THAT(w->result.status().message(),
                HasSubstr("stored on the primary (" + primary_->address() +
                          ") but only 0 of 1 replicas confirmed it in 300 ms; retry with the "
                          "same ids: nothing is stored twice"));
    fastest = std::min(fastest, w->at - sent);
    slowest = std::max(slowest, w->at - sent);
  }
  std::cerr << "[stopped replica] " << kWrites << " writes answered UNAVAILABLE after "
            << absl::FormatDuration(fastest) << " to " << absl::FormatDuration(slowest) << "\n";
  EXPECT_GE(fastest, kTimeout - absl::Milliseconds(10));
  EXPECT_LT(slowest, 2 * kTimeout + absl::Milliseconds(300));
  // Stored on the primary all the same; once the replica is back, a retry is confirmed.
  EXPECT_EQ(primary_->Run({"HLEN", "h"}).integer, kWrites / 2);
  Continue();
  ASSERT_TRUE(Run({"HSET", "h", "again", "1"}).ok());
  EXPECT_EQ(replica_->Run({"HLEN", "h"}).integer, kWrites / 2 + 1);

  // A killed replica: the same.
  replica_->Kill();
  absl::Time start = absl::Now();
  absl::StatusOr<Reply> lost = Run({"SET", "k", "after"});
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_THAT(lost.status().message(), HasSubstr("only 0 of 1 replicas"));
  EXPECT_LT(absl::Now() - start, kTimeout + absl::Milliseconds(300));
  ASSERT_TRUE(Run({"GET", "k"}).ok());
}

TEST_F(WaitReplicasTest, CallersDeadlineSoonerThanTheTimeoutBoundsTheWait) {
  StartClient(1, absl::Seconds(3));
  Stop();
  absl::Time start = absl::Now();
  absl::StatusOr<Reply> r = Run({"SET", "k", "v"}, Deadline(absl::Milliseconds(200)));
  absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsUnavailable(r.status()) || absl::IsDeadlineExceeded(r.status()))
      << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("stored on the primary"));
  EXPECT_LT(took, absl::Milliseconds(400));
  EXPECT_EQ(primary_->Run({"GET", "k"}).str, "v");
}

TEST_F(WaitReplicasTest, MeasureWriteLatencyWithAndWithoutWait) {
  // Figures, not assertions: sequential SETs, each awaited.
  for (int wait : {0, 1}) {
    StartClient(wait, absl::Seconds(1));
    constexpr int kWrites = 2000;
    absl::Time start = absl::Now();
    for (int i = 0; i < kWrites; ++i) ASSERT_TRUE(Run({"SET", "lat", std::to_string(i)}).ok());
    absl::Duration each = (absl::Now() - start) / kWrites;
    // And concurrent: 20000 in flight at once.
    constexpr int kBurst = 20000;
    std::atomic<int> left{kBurst};
    absl::Notification all;
    absl::Time burst = absl::Now();
    for (int i = 0; i < kBurst; ++i) {
      client_->Command({"SET", absl::StrCat("b", i % 100), "1"}, Deadline(absl::Seconds(30)),
                       [&](absl::StatusOr<Reply> r) {
                         EXPECT_TRUE(r.ok()) << r.status();
                         if (--left == 0) all.Notify();
                       });
    }
    all.WaitForNotification();
    absl::Duration burst_took = absl::Now() - burst;
    std::cerr << "[latency] wait_replicas=" << wait << ": sequential " << absl::FormatDuration(each)
              << " per write; " << kBurst << " concurrent in " << absl::FormatDuration(burst_took)
              << " (" << static_cast<int>(kBurst / absl::ToDoubleSeconds(burst_took)) << "/s)\n";
    client_.reset();
  }
}

}  // namespace
}  // namespace onestory::redis
