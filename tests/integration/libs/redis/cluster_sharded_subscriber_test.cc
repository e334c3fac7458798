// The ShardedSubscriber on a real Redis Cluster (3 primaries, 3 replicas; tests/testing):
// watchers of channels whose slots are on every primary, each reading its own stream from its
// cursor whenever the subscriber wakes it (a message, or a (re)subscription) as Watch does,
// see every event once and in order while events are appended (XADD + SPUBLISH in one
// function call), through a CLUSTER FAILOVER of a primary (with AUTH on every node) and through
// the migration of a watched channel's slot to another primary. The appends stop as soon as the
// failover or migration is done, so an event published while a subscription was being moved is
// read only if the subscriber resubscribes and says so.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/redis/client.h"
#include "libs/redis/function_library.h"
#include "libs/redis/sharded_subscriber.h"
#include "libs/redis/slot.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_cluster_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisClusterForTest;

// append_v1 {stream, channel} value: XADD value to stream and SPUBLISH its id on channel, as a
// timeline append does.
constexpr char kTestLibraryCode[] =
    "#!lua name=sharded_test_v1\n"
    "redis.register_function('append_v1', function(keys, args)\n"
    "  local id = redis.call('XADD', keys[1], '*', 'v', args[1])\n"
    "  redis.call('SPUBLISH', keys[2], id)\n"
    "  return id\n"
    "end)\n";
constexpr FunctionLibrary::Source kTestSources[] = {{"libs/test/lua/append.lua", 2, 6}};
constexpr FunctionLibrary kTestLibrary{"sharded_test_v1", "v1", kTestLibraryCode, kTestSources};
constexpr Function kAppend{&kTestLibrary, "append", false};

// A watcher of one stream: on every wake-up it reads the entries after its cursor (one read at
// a time; a wake-up during a read reads again after it), like TimelineService.Watch. It never
// reads unless woken.
class StreamWatcher {
 public:
  StreamWatcher(Client* client, std::string stream) : client_(client), stream_(stream) {}

  void Wake() {
    {
      absl::MutexLock lock(&mu_);
      dirty_ = true;
      if (reading_) return;
      reading_ = true;
    }
    Read();
  }
  std::vector<std::string> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  void Read() {
    std::string from;
    {
      absl::MutexLock lock(&mu_);
      dirty_ = false;
      from = cursor_.empty() ? "-" : absl::StrCat("(", cursor_);
    }
    client_->Command({"XRANGE", stream_, from, "+"}, absl::Now() + absl::Seconds(10),
                     [this](absl::StatusOr<Reply> r) {
                       bool again;
                       {
                         absl::MutexLock lock(&mu_);
                         if (!r.ok()) {
                           dirty_ = true;  // read again: the cursor did not move
                         } else {
                           for (const Reply& e : r->elements) {
                             cursor_ = e.elements[0].str;
                             seen_.push_back(e.elements[1].elements[1].str);
                           }
                         }
                         again = dirty_;
                         reading_ = again;
                       }
                       if (again) Read();
                     });
  }

  Client* client_;
  std::string stream_;
  absl::Mutex mu_;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  std::string cursor_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

class ClusterShardedSubscriberTest : public ::testing::Test {
 protected:
  void Start(const std::string& password) {
    cluster_ = std::make_unique<RedisClusterForTest>(password);
    client_ = std::make_unique<Client>(cluster_->ClientOptions());
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!client_->connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(client_->connected());
    ASSERT_TRUE(LoadLibrary(client_.get(), kTestLibrary).ok());
    // Two customers on each primary.
    for (int port : cluster_->Primaries()) {
      int found = 0;
      for (int i = 0; found < 2; ++i) {
        std::string tag = absl::StrCat("acme:c:", port, "_", i);
        if (cluster_->PrimaryOf(KeySlot(tag)) != port) continue;
        ++found;
        tags_.push_back(tag);
      }
    }
    for (const std::string& tag : tags_) {
      watchers_[Channel(tag)] = std::make_unique<StreamWatcher>(client_.get(), Stream(tag));
    }
    ShardedSubscriber::Callbacks cb;
    cb.on_message = [this](absl::string_view channel, absl::string_view) {
      watchers_.at(std::string(channel))->Wake();
    };
    cb.on_subscribed = [this](absl::string_view channel) {
      watchers_.at(std::string(channel))->Wake();
    };
    sub_ = std::make_unique<ShardedSubscriber>(client_->loop(), cluster_->ClientOptions(),
                                               client_->router(), std::move(cb));
    OnLoop([&] {
      sub_->Start();
      for (const std::string& tag : tags_) sub_->Subscribe(Channel(tag));
    });
    give_up = absl::Now() + absl::Seconds(10);
    bool ready = false;
    while (!ready && absl::Now() < give_up) {
      OnLoop([&] { ready = sub_->ready(); });
      absl::SleepFor(absl::Milliseconds(10));
    }
    ASSERT_TRUE(ready);
    OnLoop([&] { EXPECT_EQ(sub_->nodes(), 3u) << "one connection per primary"; });
  }
  void TearDown() override {
    if (sub_) {
      OnLoop([&] {
        sub_->Stop();
        sub_.reset();
      });
    }
    client_.reset();
    cluster_.reset();
  }

  static std::string Channel(const std::string& tag) { return absl::StrCat("os:{", tag, "}:n"); }
  static std::string Stream(const std::string& tag) { return absl::StrCat("os:{", tag, "}:tl"); }

  template <typename Fn>
  void OnLoop(Fn fn) {
    absl::Notification done;
    client_->loop()->Post([&] {
      fn();
      done.Notify();
    });
    done.WaitForNotification();
  }

  // Appends value to tag's stream; true when it was stored.
  bool Append(const std::string& tag, const std::string& value) {
    absl::StatusOr<Reply> r = Await<Reply>([&](Callback<Reply> done) {
      client_->Fcall(kAppend, {Stream(tag), Channel(tag)}, {value}, Deadline(absl::Seconds(10)),
                     std::move(done));
    });
    EXPECT_TRUE(r.ok()) << tag << " " << value << ": " << r.status();
    return r.ok();
  }

  // Appends to every customer in turn on a thread until stop, then returns what each got.
  std::thread Appender(std::atomic<bool>* stop,
                       std::map<std::string, std::vector<std::string>>* sent) {
    return std::thread([this, stop, sent] {
      for (int i = 0; !stop->load() || i < 60; ++i) {
        const std::string& tag = tags_[i % tags_.size()];
        std::string value = absl::StrCat(i);
        if (Append(tag, value)) (*sent)[tag].push_back(value);
        absl::SleepFor(absl::Milliseconds(2));
      }
    });
  }

  // Every watcher ends with exactly what was appended to its stream, in order.
  void ExpectEveryEventOnceInOrder(const std::map<std::string, std::vector<std::string>>& sent) {
    for (const std::string& tag : tags_) {
      StreamWatcher* w = watchers_.at(Channel(tag)).get();
      const std::vector<std::string>& want = sent.at(tag);
      absl::Time give_up = absl::Now() + absl::Seconds(10);
      while (w->seen().size() < want.size() && absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      EXPECT_EQ(w->seen(), want) << "watcher of " << tag << " (slot " << KeySlot(tag)
                                 << ", primary " << cluster_->PrimaryOf(KeySlot(tag)) << ")";
    }
  }

  std::unique_ptr<RedisClusterForTest> cluster_;
  std::unique_ptr<Client> client_;
  std::vector<std::string> tags_;
  std::map<std::string, std::unique_ptr<StreamWatcher>> watchers_;  // by channel
  std::unique_ptr<ShardedSubscriber> sub_;
};

TEST_F(ClusterShardedSubscriberTest, WatchersSeeEveryEventOnceThroughAFailover) {
  ASSERT_NO_FATAL_FAILURE(Start("s3cret"));  // AUTH on every node's connection
  int victim = cluster_->PrimaryOf(KeySlot(tags_[0]));
  int replica = cluster_->ReplicaOf(victim);
  ASSERT_NE(replica, 0);
  std::atomic<bool> stop{false};
  std::map<std::string, std::vector<std::string>> sent;
  std::thread appender = Appender(&stop, &sent);
  absl::SleepFor(absl::Milliseconds(100));
  cluster_->Failover(replica);
  stop = true;
  appender.join();
  ExpectEveryEventOnceInOrder(sent);
  // The failed-over primary's channels moved to its replica, the others stayed.
  EXPECT_EQ(cluster_->PrimaryOf(KeySlot(tags_[0])), replica);
  Reply n = cluster_->Run(replica, {"PUBSUB", "SHARDNUMSUB", Channel(tags_[0])});
  ASSERT_EQ(n.elements.size(), 2u);
  EXPECT_EQ(n.elements[1].integer, 1);
  OnLoop([&] {
    EXPECT_GE(sub_->resubscribes(), 2u) << "both channels of the failed-over primary";
    EXPECT_TRUE(sub_->ready());
  });
}

TEST_F(ClusterShardedSubscriberTest, WatchersSeeEveryEventOnceThroughASlotMigration) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  const std::string& tag = tags_[0];
  int slot = KeySlot(tag);
  int from = cluster_->PrimaryOf(slot);
  int to = 0;
  for (int p : cluster_->Primaries()) {
    if (p != from) to = p;
  }
  std::atomic<bool> stop{false};
  std::map<std::string, std::vector<std::string>> sent;
  ASSERT_TRUE(Append(tag, "before"));
  sent[tag].push_back("before");
  std::thread appender = Appender(&stop, &sent);
  absl::SleepFor(absl::Milliseconds(100));
  cluster_->BeginMigration(slot, from, to);
  EXPECT_EQ(cluster_->MigrateKeys(slot, from, to, 1, absl::Milliseconds(40)), 1);
  absl::SleepFor(absl::Milliseconds(50));
  cluster_->FinishMigration(slot, from, to);
  stop = true;
  appender.join();
  ExpectEveryEventOnceInOrder(sent);
  Reply n = cluster_->Run(to, {"PUBSUB", "SHARDNUMSUB", Channel(tag)});
  ASSERT_EQ(n.elements.size(), 2u);
  EXPECT_EQ(n.elements[1].integer, 1) << "subscribed on the slot's new primary";
  n = cluster_->Run(from, {"PUBSUB", "SHARDNUMSUB", Channel(tag)});
  ASSERT_EQ(n.elements.size(), 2u);
  EXPECT_EQ(n.elements[1].integer, 0) << "and no longer on the old one";
  OnLoop([&] { EXPECT_GE(sub_->resubscribes(), 1u); });
}

}  // namespace
}  // namespace onestory::redis
