// The Client on a real Redis Cluster (3 primaries, 3 replicas; tests/testing): routing by key
// slot to every primary, FCALL of a library on every primary, a call whose keys span slots
// refused before anything is sent, and, during streams of writes, a CLUSTER FAILOVER, a slot
// migration (ASK, TRYAGAIN, then MOVED) and a kill -9 of a primary; a function missing on a new
// primary; AUTH on every node; OneStory's OS_MOVED left alone. Every write carries a unique value
// so "exactly once" is checked by reading every list back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/redis/client.h"
#include "libs/redis/function_library.h"
#include "libs/redis/slot.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_cluster_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisClusterForTest;
using ::testing::HasSubstr;

// A small library: push_v1 RPUSHes ARGV[1] to every key it is given; merged_v1 answers as a
// merged customer does (libs/identity): OneStory's OS_MOVED, which is no cluster redirection.
constexpr char kTestLibraryCode[] =
    "#!lua name=cluster_test_v1\n"
    "redis.register_function('push_v1', function(keys, args)\n"
    "  for _, k in ipairs(keys) do redis.call('RPUSH', k, args[1]) end\n"
    "  return #keys\n"
    "end)\n"
    "redis.register_function('merged_v1', function(keys, args)\n"
    "  return redis.error_reply('OS_MOVED ' .. args[1])\n"
    "end)\n"
    "redis.register_function('push_once_v1', function(keys, args)\n"
    "  if redis.call('SADD', keys[2], args[1]) == 1 then redis.call('RPUSH', keys[1], args[1]) "
    "end\n"
    "  return 1\n"
    "end)\n";
constexpr FunctionLibrary::Source kTestSources[] = {{"libs/test/lua/push.lua", 2, 11}};
constexpr FunctionLibrary kTestLibrary{"cluster_test_v1", "v1", kTestLibraryCode, kTestSources};
constexpr Function kPush{&kTestLibrary, "push", false};
constexpr Function kMerged{&kTestLibrary, "merged", false};
// push_once_v1 {list, ids} id: RPUSHes id to list unless the set ids has it (an idempotent
// write, as OneStory's appends are by event id).
constexpr Function kPushOnce{&kTestLibrary, "push_once", false};

class ClusterClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<RedisClusterForTest>();
    client_ = std::make_unique<Client>(cluster_->ClientOptions());
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!client_->connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(client_->connected());
  }
  void TearDown() override {
    client_.reset();
    cluster_.reset();
  }

  absl::StatusOr<Reply> Run(std::vector<std::string> argv) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Command(std::move(argv), Deadline(), std::move(done));
    });
  }
  absl::StatusOr<Reply> Push(std::vector<std::string> keys, const std::string& value) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Fcall(kPush, std::move(keys), {value}, Deadline(), std::move(done));
    });
  }

  // `count` keys "{<prefix><i>}:l" whose slots the primary at port serves.
  std::vector<std::string> KeysOn(int port, const std::string& prefix, int count) {
    std::vector<std::string> keys;
    for (int i = 0; static_cast<int>(keys.size()) < count; ++i) {
      std::string key = absl::StrCat("{", prefix, i, "}:l");
      if (cluster_->PrimaryOf(KeySlot(key)) == port) keys.push_back(key);
    }
    return keys;
  }

  // A primary other than `from`: where a migration of one of from's slots goes.
  int OtherPrimary(int from) {
    for (int p : cluster_->Primaries()) {
      if (p != from) return p;
    }
    return 0;
  }

  // Moves slot's `keys` keys from `from` to `to` one at a time, 40 ms apart, so for a while some
  // are on each side; calls run 100 ms before and 200 ms after.
  void MigrateOneKeyAtATime(int slot, int from, int to, int keys) {
    absl::SleepFor(absl::Milliseconds(100));
    cluster_->BeginMigration(slot, from, to);
    EXPECT_EQ(cluster_->MigrateKeys(slot, from, to, 1, absl::Milliseconds(40)), keys);
    absl::SleepFor(absl::Milliseconds(100));
    cluster_->FinishMigration(slot, from, to);
    absl::SleepFor(absl::Milliseconds(200));
  }

  // Every value of every list, read through the client, with how often each appears.
  std::map<std::string, int> Values(const std::vector<std::string>& keys) {
    std::map<std::string, int> seen;
    for (const std::string& k : keys) {
      absl::StatusOr<Reply> r = Run({"LRANGE", k, "0", "-1"});
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) continue;
      for (const Reply& v : r->elements) ++seen[v.str];
    }
    return seen;
  }

  std::unique_ptr<RedisClusterForTest> cluster_;
  std::unique_ptr<Client> client_;
};

// A stream of asynchronous writes from one thread, `pace` apart, each with its own value;
// results gathered by value.
class WriteStream {
 public:
  WriteStream(Client* client, absl::Duration deadline) : client_(client), deadline_(deadline) {}

  // RPUSH value to key, or (with a second key) FCALL push_v1 on both.
  void Write(const std::vector<std::string>& keys, const std::string& value) {
    {
      absl::MutexLock lock(&mu_);
      ++outstanding_;
    }
    absl::Time sent = absl::Now();
    auto done = [this, value, sent](absl::StatusOr<Reply> r) {
      absl::MutexLock lock(&mu_);
      results_[value] = r.status();
      slowest_ = std::max(slowest_, absl::Now() - sent);
      --outstanding_;
    };
    if (keys.size() == 1) {
      client_->Command({"RPUSH", keys[0], value}, absl::Now() + deadline_, std::move(done));
    } else {
      client_->Fcall(kPush, keys, {value}, absl::Now() + deadline_, std::move(done));
    }
  }
  // Waits for every reply; false when some did not come within `timeout`.
  bool Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(
            +[](int* outstanding) { return *outstanding == 0; }, &outstanding_),
        timeout);
  }
  std::map<std::string, absl::Status> results() {
    absl::MutexLock lock(&mu_);
    return results_;
  }
  absl::Duration slowest() {
    absl::MutexLock lock(&mu_);
    return slowest_;
  }

 private:
  Client* client_;
  absl::Duration deadline_;
  absl::Mutex mu_;
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, absl::Status> results_ ABSL_GUARDED_BY(mu_);
  absl::Duration slowest_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ClusterClientTest, CommandsReachEveryPrimary) {
  std::vector<int> primaries = cluster_->Primaries();
  ASSERT_EQ(primaries.size(), 3u);
  for (int port : primaries) {
    std::string key = KeysOn(port, "k", 1)[0];
    ASSERT_TRUE(Run({"SET", key, absl::StrCat("on ", port)}).ok());
    absl::StatusOr<Reply> got = Run({"GET", key});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->str, absl::StrCat("on ", port));
    // Stored on that primary itself: the client sent it there, not through a redirection.
    EXPECT_EQ(cluster_->Run(port, {"GET", key}).str, absl::StrCat("on ", port));
  }
  EXPECT_EQ(client_->cluster_stats().moved, 0u);
  absl::StatusOr<Reply> pong = Run({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->str, "PONG");
  // Redis's own errors still reach the caller as before.
  std::string key = KeysOn(primaries[0], "k", 1)[0];
  EXPECT_EQ(Run({"HGET", key, "f"}).status().code(), absl::StatusCode::kInternal);
}

// A cluster whose nodes require a password: AUTH on every connection to every node.
TEST(ClusterAuthTest, PasswordOnEveryNode) {
  RedisClusterForTest cluster("s3cret-pw");
  {
    Client client(cluster.ClientOptions());
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!client.connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(client.connected());
    for (int port : cluster.Primaries()) {
      std::string key;
      for (int i = 0; key.empty(); ++i) {
        std::string k = absl::StrCat("{a", i, "}");
        if (cluster.PrimaryOf(KeySlot(k)) == port) key = k;
      }
      absl::StatusOr<Reply> r = Await<Reply>([&](Callback<Reply> done) {
        client.Command({"SET", key, "v"}, Deadline(), std::move(done));
      });
      EXPECT_TRUE(r.ok()) << port << ": " << r.status();
      EXPECT_EQ(cluster.Run(port, {"GET", key}).str, "v");
    }
  }
  // A wrong password: never connected, and calls fail UNAVAILABLE within their deadline.
  Options wrong = cluster.ClientOptions();
  wrong.password = "not-it";
  Client client(wrong);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(client.connected());
  absl::StatusOr<Reply> r = Await<Reply>([&](Callback<Reply> done) {
    client.Command({"GET", "k"}, Deadline(absl::Seconds(5)), std::move(done));
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("AUTH"));
}

TEST_F(ClusterClientTest, FunctionLibraryOnEveryPrimary) {
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  for (int port : cluster_->Primaries()) {
    Reply list = cluster_->Run(port, {"FUNCTION", "LIST", "LIBRARYNAME", "cluster_test_v1"});
    EXPECT_EQ(list.elements.size(), 1u) << "library not loaded on " << port;
    std::vector<std::string> keys = KeysOn(port, "f", 1);
    keys.push_back(absl::StrCat(keys[0], ":second"));  // same tag, same slot
    absl::StatusOr<Reply> r = Push(keys, "v");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->integer, 2);
    EXPECT_EQ(cluster_->Run(port, {"LLEN", keys[1]}).integer, 1);
  }
  // Loading again is fine (the name is the content).
  EXPECT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  // OneStory's OS_MOVED reaches the caller as before; the client follows no redirection.
  absl::StatusOr<Reply> merged = Await<Reply>([&](Callback<Reply> done) {
    client_->Fcall(kMerged, {"{cus_1}:p"}, {"cus_2"}, Deadline(), std::move(done));
  });
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(merged.status().message(), "cus_2");
  EXPECT_EQ(client_->cluster_stats().moved, 0u);
}

TEST_F(ClusterClientTest, KeysSpanningSlotsAreRefusedBeforeSending) {
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  std::vector<int> primaries = cluster_->Primaries();
  std::string a = KeysOn(primaries[0], "x", 1)[0];
  std::string b = KeysOn(primaries[1], "y", 1)[0];
  auto fcalls = [&] {
    int64_t n = 0;
    for (int port : cluster_->ports()) {
      std::string info = cluster_->Run(port, {"INFO", "commandstats"}).str;
      for (absl::string_view line : absl::StrSplit(info, "\r\n")) {
        if (!absl::StartsWith(line, "cmdstat_fcall:calls=")) continue;
        int64_t calls = 0;
        absl::string_view rest = line.substr(20);
        if (absl::SimpleAtoi(rest.substr(0, rest.find(',')), &calls)) n += calls;
      }
    }
    return n;
  };
  int64_t before = fcalls();
  absl::StatusOr<Reply> r = Push({a, b}, "v");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(a));
  EXPECT_THAT(r.status().message(), HasSubstr(b));
  absl::StatusOr<Reply> del = Run({"DEL", a, b});
  EXPECT_EQ(del.status().code(), absl::StatusCode::kInvalidArgument);
  // A command the client has no key rule for is refused too, never guessed.
  EXPECT_EQ(Run({"OBJECT", "ENCODING", a}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fcalls(), before);
  EXPECT_EQ(cluster_->Run(primaries[0], {"EXISTS", a}).integer, 0);
  EXPECT_EQ(cluster_->Run(primaries[1], {"EXISTS", b}).integer, 0);
}

TEST_F(ClusterClientTest, FailoverDuringWritesLosesAndRepeatsNothing) {
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  std::vector<std::string> keys;
  for (int port : cluster_->Primaries()) {
    for (const std::string& k : KeysOn(port, "w", 4)) keys.push_back(k);
  }
  int victim = cluster_->PrimaryOf(KeySlot(keys[0]));
  int replica = cluster_->ReplicaOf(victim);
  ASSERT_NE(replica, 0);
  WriteStream stream(client_.get(), absl::Seconds(10));
  constexpr int kWrites = 3000;
  std::thread failover;
  for (int i = 0; i < kWrites; ++i) {
    const std::string& key = keys[i % keys.size()];
    if (i % 3 == 0) {
      stream.Write({key, absl::StrCat(key, ":fn")}, absl::StrCat(i));
    } else {
      stream.Write({key}, absl::StrCat(i));
    }
    if (i == 300) {
      failover = std::thread([&] { cluster_->Failover(replica); });
    }
    absl::SleepFor(absl::Microseconds(1000));
  }
  failover.join();
  ASSERT_TRUE(stream.Wait(absl::Seconds(20))) << "a write never got its reply";
  int failed = 0;
  for (const auto& [value, status] : stream.results()) {
    if (!status.ok()) {
      ++failed;
      ADD_FAILURE() << "write " << value << ": " << status;
      if (failed > 5) break;
    }
  }
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(cluster_->PrimaryOf(KeySlot(keys[0])), replica);
  // Every write exactly once (an FCALL wrote its value to its key and to key:fn).
  std::vector<std::string> all = keys;
  for (const std::string& k : keys) all.push_back(absl::StrCat(k, ":fn"));
  std::map<std::string, int> seen = Values(all);
  for (int i = 0; i < kWrites; ++i) {
    int want = i % 3 == 0 ? 2 : 1;
    ASSERT_EQ(seen[absl::StrCat(i)], want) << "write " << i;
  }
  ClusterRouter::Stats stats = client_->cluster_stats();
  std::cerr << "[failover] moved=" << stats.moved << " resent=" << stats.resent
            << " map_reads=" << stats.map_reads
            << " slowest write=" << absl::FormatDuration(stream.slowest()) << "\n";
  EXPECT_GT(stats.moved, 0u) << "the stream did not span the failover";
}

TEST_F(ClusterClientTest, SlotMigrationDuringWritesAsksAndRetries) {
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  // Ten keys of one slot (one hash tag), and the FCALL pair among them.
  std::vector<std::string> keys;
  for (int i = 0; i < 10; ++i) keys.push_back(absl::StrCat("{mig}:", i));
  int slot = KeySlot("mig");
  int from = cluster_->PrimaryOf(slot);
  int to = OtherPrimary(from);
  // The keys exist before the migration starts.
  for (const std::string& k : keys) ASSERT_TRUE(Run({"RPUSH", k, "seed"}).ok());

  WriteStream stream(client_.get(), absl::Seconds(10));
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load() || i < 200; ++i) {
      if (i % 2 == 0) {
        stream.Write({keys[i % 10], keys[(i + 1) % 10]}, absl::StrCat(i));
      } else {
        stream.Write({keys[i % 10]}, absl::StrCat(i));
      }
      written = i + 1;
      absl::SleepFor(absl::Microseconds(500));
    }
  });
  MigrateOneKeyAtATime(slot, from, to, 10);
  stop = true;
  writer.join();
  ASSERT_TRUE(stream.Wait(absl::Seconds(20))) << "a write never got its reply";
  int failed = 0;
  for (const auto& [value, status] : stream.results()) {
    if (!status.ok() && ++failed <= 5) ADD_FAILURE() << "write " << value << ": " << status;
  }
  EXPECT_EQ(failed, 0);
  std::map<std::string, int> seen = Values(keys);
  for (int i = 0; i < written.load(); ++i) {
    ASSERT_EQ(seen[absl::StrCat(i)], i % 2 == 0 ? 2 : 1) << "write " << i;
  }
  EXPECT_EQ(seen["seed"], 10);
  EXPECT_EQ(cluster_->Run(to, {"LLEN", keys[0]}).type, Reply::Type::kInteger);
  ClusterRouter::Stats stats = client_->cluster_stats();
  std::cerr << "[migration] writes=" << written.load() << " ask=" << stats.ask
            << " tryagain=" << stats.tryagain << " moved=" << stats.moved
            << " slowest write=" << absl::FormatDuration(stream.slowest()) << "\n";
  EXPECT_GT(stats.ask, 0u);
  EXPECT_GT(stats.tryagain, 0u);
  EXPECT_GT(stats.moved, 0u);
}

TEST_F(ClusterClientTest, MigrationEndReachingOneNodeFirstIsWaitedOut) {
  // SETSLOT NODE reaches the source before the target: for that moment the source answers
  // MOVED to the target, and the target, still importing, MOVED back to the source. A call in
  // that window waits (it is no redirection loop) and is served once the target knows.
  std::string key = "{pingpong}:l";
  int slot = KeySlot(key);
  int from = cluster_->PrimaryOf(slot);
  int to = OtherPrimary(from);
  ASSERT_TRUE(Run({"RPUSH", key, "seed"}).ok());
  cluster_->BeginMigration(slot, from, to);
  EXPECT_EQ(cluster_->MigrateKeys(slot, from, to), 1);
  redis::Reply r =
      cluster_->Run(from, {"CLUSTER", "SETSLOT", absl::StrCat(slot), "NODE", cluster_->NodeId(to)});
  ASSERT_NE(r.type, Reply::Type::kError) << r.str;
  ClusterRouter::Stats before = client_->cluster_stats();

  WriteStream stream(client_.get(), absl::Seconds(10));
  stream.Write({key}, "in-the-window");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_GT(client_->cluster_stats().moved - before.moved, 2u) << "the call met no MOVED loop";
  cluster_->FinishMigration(slot, from, to);
  ASSERT_TRUE(stream.Wait(absl::Seconds(10))) << "the write never got its reply";
  EXPECT_TRUE(stream.results()["in-the-window"].ok()) << stream.results()["in-the-window"];
  std::map<std::string, int> seen = Values({key});
  EXPECT_EQ(seen["in-the-window"], 1);
  EXPECT_EQ(seen["seed"], 1);
}

TEST_F(ClusterClientTest, SnapshotsFollowASlotMigrationAndNeverSeeItHalfDone) {
  // One customer's keys share a slot; a migration moves them one at a time. A snapshot of all
  // of them must see every key, whichever side each is on: ASK, TRYAGAIN and MOVED are followed
  // and no read is answered from a node that lacks some of the keys.
  std::vector<std::string> keys;
  for (int i = 0; i < 10; ++i) keys.push_back(absl::StrCat("{snap}:", i));
  int slot = KeySlot("snap");
  int from = cluster_->PrimaryOf(slot);
  int to = OtherPrimary(from);
  for (const std::string& k : keys) ASSERT_TRUE(Run({"RPUSH", k, "seed"}).ok());
  std::vector<std::vector<std::string>> reads;
  for (const std::string& k : keys) reads.push_back({"LLEN", k});

  std::atomic<bool> stop{false};
  std::atomic<int> snapshots{0}, wrong{0}, failed{0};
  std::thread reader([&] {
    while (!stop.load()) {
      // Every other snapshot read in place: redirections are followed the same way.
      bool in_place = snapshots.load() % 2 == 1;
      absl::StatusOr<Reply> r = Await<Reply>([&](Callback<Reply> done) {
        client_->Snapshot(reads, Deadline(absl::Seconds(10)), std::move(done), in_place);
      });
      ++snapshots;
      if (!r.ok()) {
        if (++failed <= 3) ADD_FAILURE() << r.status();
        continue;
      }
      std::vector<int64_t> lengths;
      if (in_place && r->type == Reply::Type::kArrayView) {
        for (RespView::Value n : r->view->root()) lengths.push_back(n.integer());
      } else if (!in_place) {
        for (const Reply& n : r->elements) lengths.push_back(n.integer);
      }
      bool all = lengths.size() == keys.size();
      for (int64_t n : lengths) all = all && n == 1;
      if (!all && ++wrong <= 3) ADD_FAILURE() << "a snapshot saw a key missing";
    }
  });
  MigrateOneKeyAtATime(slot, from, to, 10);
  stop = true;
  reader.join();
  ClusterRouter::Stats stats = client_->cluster_stats();
  std::cerr << "[snapshot migration] snapshots=" << snapshots.load() << " ask=" << stats.ask
            << " tryagain=" << stats.tryagain << " moved=" << stats.moved << "\n";
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(stats.ask + stats.tryagain, 0u);
  EXPECT_GT(stats.moved, 0u);
  // Keys of two slots are refused before anything is sent.
  absl::StatusOr<Reply> split = Await<Reply>([&](Callback<Reply> done) {
    client_->Snapshot({{"LLEN", keys[0]}, {"LLEN", "other"}}, Deadline(), std::move(done));
  });
  EXPECT_EQ(split.status().code(), absl::StatusCode::kInvalidArgument) << split.status();
}

TEST_F(ClusterClientTest, KilledPrimaryFailsCallsOrServesThemNeverHangs) {
  std::vector<std::string> keys;
  for (int port : cluster_->Primaries()) {
    for (const std::string& k : KeysOn(port, "d", 3)) keys.push_back(k);
  }
  int victim = cluster_->PrimaryOf(KeySlot(keys[0]));
  int replica = cluster_->ReplicaOf(victim);
  ASSERT_NE(replica, 0);
  constexpr absl::Duration kDeadline = absl::Seconds(4);
  WriteStream stream(client_.get(), kDeadline);
  constexpr int kWrites = 3000;
  for (int i = 0; i < kWrites; ++i) {
    stream.Write({keys[i % keys.size()]}, absl::StrCat(i));
    if (i == 300) cluster_->Kill(victim);
    absl::SleepFor(absl::Microseconds(1000));
  }
  ASSERT_TRUE(stream.Wait(kDeadline + absl::Seconds(2))) << "a write hangs";
  EXPECT_LT(stream.slowest(), kDeadline + absl::Milliseconds(500));
  int ok = 0, unavailable = 0;
  for (const auto& [value, status] : stream.results()) {
    if (status.ok()) {
      ++ok;
    } else if (absl::IsUnavailable(status)) {
      ++unavailable;
    } else {
      ADD_FAILURE() << "write " << value << ": " << status;
    }
  }
  std::cerr << "[kill] ok=" << ok << " unavailable=" << unavailable
            << " slowest=" << absl::FormatDuration(stream.slowest()) << "\n";
  EXPECT_GT(unavailable, 0) << "the kill went unnoticed";
  // The replica took over; the client serves the victim's slots again.
  cluster_->WaitOwner(KeySlot(keys[0]), replica);
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  absl::StatusOr<Reply> r;
  do {
    r = Run({"RPUSH", keys[0], "after"});
  } while (!r.ok() && absl::Now() < give_up);
  EXPECT_TRUE(r.ok()) << r.status();
  // Writes to the other primaries went on all along.
  std::map<std::string, int> seen = Values(keys);
  for (const auto& [value, count] : seen) EXPECT_LE(count, 1) << value;
}

TEST_F(ClusterClientTest, MissingFunctionOnNewPrimaryIsLoadedAndRetried) {
  // A manual failover closes no connection: the client learns of it from its periodic map read.
  Options options = cluster_->ClientOptions();
  options.cluster_refresh_interval = absl::Milliseconds(500);
  client_ = std::make_unique<Client>(options);
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  std::string key = "{fn}:l";
  int primary = cluster_->PrimaryOf(KeySlot(key));
  int replica = cluster_->ReplicaOf(primary);
  // The shard loses the library (FUNCTION FLUSH replicates), then its replica takes over: the
  // client gives the new primary the library without waiting for a call to miss it...
  cluster_->Run(primary, {"FUNCTION", "FLUSH"});
  cluster_->WaitHealthy();
  cluster_->Failover(replica);
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (cluster_->Run(replica, {"FUNCTION", "LIST", "LIBRARYNAME", "cluster_test_v1"})
             .elements.empty() &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(cluster_->Run(replica, {"FUNCTION", "LIST", "LIBRARYNAME", "cluster_test_v1"})
                .elements.size(),
            1u);
  absl::StatusOr<Reply> r = Push({key}, "a");
  ASSERT_TRUE(r.ok()) << r.status();
  // ...and a primary that lost it anyway is given it by the call that misses it.
  cluster_->Run(replica, {"FUNCTION", "FLUSH"});
  r = Push({key}, "b");
  ASSERT_TRUE(r.ok()) << r.status();
  Reply list = cluster_->Run(replica, {"LRANGE", key, "0", "-1"});
  ASSERT_EQ(list.elements.size(), 2u);
  EXPECT_EQ(list.elements[1].str, "b");
}

// The process id of the cluster node at port (INFO server), to stop and continue it.
// The process id of the node at port, or 0 (and a test failure) when it cannot be read. Never
// pass 0 to kill(): it would signal the whole process group, the test runner included.
pid_t NodePid(RedisClusterForTest& cluster, int port) {
  if (port <= 0) {
    ADD_FAILURE() << "no node to find the process of (port " << port << ")";
    return 0;
  }
  for (absl::string_view line : absl::StrSplit(cluster.Run(port, {"INFO", "server"}).str, "\r\n")) {
    int pid = 0;
    if (absl::ConsumePrefix(&line, "process_id:") && absl::SimpleAtoi(line, &pid)) return pid;
  }
  ADD_FAILURE() << "no process_id from the node at " << port;
  return 0;
}

// LRANGE key on the replica at port: READONLY first, on the same connection (a replica
// answers MOVED otherwise).
std::vector<std::string> ReplicaList(int port, const std::string& key) {
  std::vector<std::string> out;
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) {
    ADD_FAILURE() << "cannot connect to the replica at " << port;
    if (c) redisFree(c);
    return out;
  }
  freeReplyObject(redisCommand(c, "READONLY"));
  auto* r = static_cast<redisReply*>(redisCommand(c, "LRANGE %b 0 -1", key.data(), key.size()));
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < r->elements; ++i)
      out.emplace_back(r->element[i]->str, r->element[i]->len);
  } else {
    ADD_FAILURE() << "LRANGE " << key << " on the replica at " << port << ": "
                  << (r && r->str ? r->str : "no reply");
  }
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

TEST_F(ClusterClientTest, WaitReplicasAnswersAWriteOnceItsPrimarysReplicaHasIt) {
  Options options = cluster_->ClientOptions();
  options.wait_replicas = 1;
  options.wait_timeout = absl::Seconds(1);
  client_ = std::make_unique<Client>(options);
  ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
  for (int primary : cluster_->Primaries()) {
    std::string key = KeysOn(primary, "wr", 1).front();
    int replica = cluster_->ReplicaOf(primary);
    ASSERT_NE(replica, 0);
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(Push({key}, absl::StrCat(i)).ok());
      ASSERT_EQ(ReplicaList(replica, key).size(), static_cast<size_t>(i + 1)) << key;
    }
    // A replica that is slow to take the write holds its answer back until it has it.
    pid_t pid = NodePid(*cluster_, replica);
    ASSERT_GT(pid, 0);
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
    absl::Notification done;
    absl::Status status = absl::UnknownError("not answered");
    client_->Fcall(kPush, {key}, {"slow"}, Deadline(), [&](absl::StatusOr<Reply> r) {
      status = r.status();
      done.Notify();
    });
    bool early = done.WaitForNotificationWithTimeout(absl::Milliseconds(300));
    kill(pid, SIGCONT);
    EXPECT_FALSE(early) << "answered before the replica had the write";
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(3)));
    ASSERT_TRUE(status.ok()) << status;
    std::vector<std::string> list = ReplicaList(replica, key);
    ASSERT_EQ(list.size(), 11u);
    EXPECT_EQ(list.back(), "slow");
  }
}

// Writes stream to one shard; its replica stops and the primary drops its link (the replica
// lags), the primary is killed (kill -9), the replica continues and takes over. Every write is
// idempotent (push_once_v1); after the takeover, failed writes are retried with the same ids.
// Returns how many acknowledged writes are missing on the new primary, and checks that none is
// there twice.
int AcknowledgedWritesLostInAKill(RedisClusterForTest& cluster, int wait_replicas) {
  Options options = cluster.ClientOptions();
  options.wait_replicas = wait_replicas;
  options.wait_timeout = absl::Milliseconds(500);
  Client client(options);
  EXPECT_TRUE(LoadLibrary(&client, kTestLibrary).ok());
  int victim = cluster.Primaries().front();
  int replica = cluster.ReplicaOf(victim);
  if (replica == 0) {
    ADD_FAILURE() << "the primary at " << victim << " has no replica";
    return -1;
  }
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < 4; ++i) {
    std::string key = absl::StrCat("{kill", i, "}:l");
    if (cluster.PrimaryOf(KeySlot(key)) == victim) keys.push_back(key);
  }
  auto push = [&](int id, absl::Duration deadline, ReplyCallback cb) {
    const std::string& key = keys[id % keys.size()];
    client.Fcall(kPushOnce, {key, absl::StrCat(key, ":ids")}, {absl::StrCat(id)},
                 absl::Now() + deadline, std::move(cb));
  };
  constexpr int kWrites = 1200;
  absl::Mutex mu;
  std::map<int, absl::Status> results;
  pid_t replica_pid = NodePid(cluster, replica);
  if (replica_pid <= 0) return -1;
  for (int id = 0; id < kWrites; ++id) {
    push(id, absl::Seconds(2), [&, id](absl::StatusOr<Reply> r) {
      absl::MutexLock lock(&mu);
      results[id] = r.status();
    });
    if (id == 300) kill(replica_pid, SIGSTOP);
    // The primary drops its link to the stopped replica: what it writes from now on stays in
    // its own memory (before, it went to the replica's socket, which keeps it for when the
    // replica wakes).
    if (id == 320) cluster.Run(victim, {"CLIENT", "KILL", "TYPE", "replica"});
    if (id == 500) {
      cluster.Kill(victim);
      kill(replica_pid, SIGCONT);
    }
    absl::SleepFor(absl::Microseconds(500));
  }
  {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(
        absl::Condition(
            +[](std::map<int, absl::Status>* r) { return r->size() == kWrites; }, &results),
        absl::Seconds(10));
    EXPECT_EQ(results.size(), static_cast<size_t>(kWrites)) << "a write got no answer";
  }
  cluster.WaitOwner(KeySlot(keys[0]), replica);
  std::set<int> acknowledged;
  std::vector<int> failed;
  {
    absl::MutexLock lock(&mu);
    for (const auto& [id, status] : results) {
      if (status.ok()) {
        acknowledged.insert(id);
      } else {
        EXPECT_TRUE(absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) << status;
        failed.push_back(id);
      }
    }
  }
  // Retries with the same ids. With wait_replicas the new primary has no replica left (the
  // old primary is dead), so they keep failing: they are left unacknowledged.
  int retried = 0;
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  for (int id : failed) {
    if (wait_replicas > 0 || absl::Now() > give_up) break;
    absl::StatusOr<Reply> r;
    do {
      r = Await<Reply>([&](Callback<Reply> done) { push(id, absl::Seconds(1), std::move(done)); });
    } while (!r.ok() && absl::Now() < give_up);
    if (r.ok()) {
      acknowledged.insert(id);
      ++retried;
    }
  }
  std::map<std::string, int> seen;
  for (const std::string& key : keys) {
    Reply list = cluster.Run(replica, {"LRANGE", key, "0", "-1"});
    for (const Reply& v : list.elements) ++seen[v.str];
  }
  int lost = 0;
  for (int id : acknowledged) {
    if (!seen.contains(absl::StrCat(id))) ++lost;
  }
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << "id " << id;
  std::cerr << "[kill -9, wait_replicas=" << wait_replicas << "] " << kWrites << " writes, "
            << acknowledged.size() << " acknowledged (" << retried << " on a retry), "
            << failed.size() - static_cast<size_t>(retried) << " left unacknowledged, " << lost
            << " acknowledged and lost\n";
  return lost;
}

TEST_F(ClusterClientTest, KilledPrimaryLosesNoWriteConfirmedByWaitReplicas) {
  client_.reset();
  EXPECT_EQ(AcknowledgedWritesLostInAKill(*cluster_, 1), 0);
  // The same on a fresh cluster without WAIT: what asynchronous replication loses.
  cluster_ = std::make_unique<RedisClusterForTest>();
  int lost = AcknowledgedWritesLostInAKill(*cluster_, 0);
  EXPECT_GT(lost, 0) << "without WAIT the lagging replica should have lost some";
}

}  // namespace
}  // namespace onestory::redis
