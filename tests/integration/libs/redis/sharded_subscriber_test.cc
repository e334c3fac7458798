// The ShardedSubscriber on a real single redis-server: SSUBSCRIBE confirmed and SPUBLISH
// delivered, unsubscribing (at once, and racing a new subscription), many channels on one
// connection, and a reconnect after CLIENT KILL TYPE pubsub that subscribes every channel again
// and confirms each (so a listener re-reads).
#include "libs/redis/sharded_subscriber.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/redis/client.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::RedisForTest;

// What the subscriber reported, per channel. Thread-safe.
class Recorder {
 public:
  ShardedSubscriber::Callbacks Callbacks() {
    ShardedSubscriber::Callbacks cb;
    cb.on_message = [this](absl::string_view channel, absl::string_view payload) {
      absl::MutexLock lock(&mu_);
      messages_[std::string(channel)].push_back(std::string(payload));
    };
    cb.on_subscribed = [this](absl::string_view channel) {
      absl::MutexLock lock(&mu_);
      ++subscribed_[std::string(channel)];
    };
    return cb;
  }
  int subscribed(const std::string& channel) {
    absl::MutexLock lock(&mu_);
    return subscribed_[channel];
  }
  std::vector<std::string> messages(const std::string& channel) {
    absl::MutexLock lock(&mu_);
    return messages_[channel];
  }
  // Waits until pred() holds (at most 10 s).
  template <typename Pred>
  bool WaitFor(Pred pred) {
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!pred()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> subscribed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> messages_ ABSL_GUARDED_BY(mu_);
};

class ShardedSubscriberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisForTest>();
    client_ = std::make_unique<Client>(redis_->ClientOptions());
    sub_ = std::make_unique<ShardedSubscriber>(client_->loop(), redis_->ClientOptions(), nullptr,
                                               recorder_.Callbacks());
    OnLoop([&] { sub_->Start(); });
  }
  void TearDown() override {
    OnLoop([&] {
      sub_->Stop();
      sub_.reset();
    });
    client_.reset();
    redis_.reset();
  }

  // Runs fn on the loop thread and waits for it.
  template <typename Fn>
  void OnLoop(Fn fn) {
    absl::Notification done;
    client_->loop()->Post([&] {
      fn();
      done.Notify();
    });
    done.WaitForNotification();
  }
  // How many shard subscribers channel has on the server.
  int64_t ShardSubscribers(const std::string& channel) {
    Reply r = redis_->Run({"PUBSUB", "SHARDNUMSUB", channel});
    return r.elements.size() == 2 ? r.elements[1].integer : -1;
  }

  std::unique_ptr<RedisForTest> redis_;
  std::unique_ptr<Client> client_;
  Recorder recorder_;
  std::unique_ptr<ShardedSubscriber> sub_;
};

TEST_F(ShardedSubscriberTest, SubscribesDeliversAndUnsubscribes) {
  const std::string ch = "os:{acme:c:cus_1}:n";
  OnLoop([&] { sub_->Subscribe(ch); });
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.subscribed(ch) == 1; }));
  EXPECT_EQ(ShardSubscribers(ch), 1);
  // A classic PUBLISH is another channel namespace: not delivered.
  redis_->Run({"PUBLISH", ch, "classic"});
  redis_->Run({"SPUBLISH", ch, "1-0"});
  redis_->Run({"SPUBLISH", ch, "2-0"});
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.messages(ch).size() == 2; }));
  EXPECT_EQ(recorder_.messages(ch), (std::vector<std::string>{"1-0", "2-0"}));

  // Subscribing a channel that is subscribed confirms at once, without a new SSUBSCRIBE.
  OnLoop([&] { sub_->Subscribe(ch); });
  EXPECT_EQ(recorder_.subscribed(ch), 2);

  OnLoop([&] { sub_->Unsubscribe(ch); });
  ASSERT_TRUE(recorder_.WaitFor([&] { return ShardSubscribers(ch) == 0; }));
  redis_->Run({"SPUBLISH", ch, "3-0"});
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(recorder_.messages(ch).size(), 2u);
  OnLoop([&] { EXPECT_EQ(sub_->channels(), 0u); });

  // Unsubscribed and subscribed again in one go: it ends subscribed, and confirmed.
  OnLoop([&] { sub_->Subscribe(ch); });
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.subscribed(ch) == 3; }));
  OnLoop([&] {
    sub_->Unsubscribe(ch);
    sub_->Subscribe(ch);
  });
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.subscribed(ch) == 4; }));
  EXPECT_EQ(ShardSubscribers(ch), 1);
  redis_->Run({"SPUBLISH", ch, "4-0"});
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.messages(ch).size() == 3; }));
  EXPECT_EQ(recorder_.messages(ch).back(), "4-0");
}

TEST_F(ShardedSubscriberTest, ManyChannelsShareOneConnection) {
  std::vector<std::string> channels;
  for (int i = 0; i < 200; ++i) channels.push_back(absl::StrCat("os:{acme:c:cus_", i, "}:n"));
  OnLoop([&] {
    for (const std::string& ch : channels) sub_->Subscribe(ch);
  });
  ASSERT_TRUE(recorder_.WaitFor([&] {
    for (const std::string& ch : channels) {
      if (recorder_.subscribed(ch) != 1) return false;
    }
    return true;
  }));
  for (const std::string& ch : channels) redis_->Run({"SPUBLISH", ch, ch});
  ASSERT_TRUE(recorder_.WaitFor([&] {
    for (const std::string& ch : channels) {
      if (recorder_.messages(ch).size() != 1) return false;
    }
    return true;
  }));
  for (const std::string& ch : channels) EXPECT_EQ(recorder_.messages(ch)[0], ch);
  OnLoop([&] {
    EXPECT_EQ(sub_->nodes(), 1u);
    EXPECT_TRUE(sub_->ready());
  });
  Reply clients = redis_->Run({"CLIENT", "LIST", "TYPE", "pubsub"});
  EXPECT_EQ(std::count(clients.str.begin(), clients.str.end(), '\n'), 1) << clients.str;
}

TEST_F(ShardedSubscriberTest, ResubscribesEveryChannelAfterItsConnectionIsKilled) {
  const std::vector<std::string> channels = {"os:{acme:c:a}:n", "os:{acme:c:b}:n",
                                             "os:{acme:c:c}:n"};
  OnLoop([&] {
    for (const std::string& ch : channels) sub_->Subscribe(ch);
  });
  ASSERT_TRUE(recorder_.WaitFor([&] {
    for (const std::string& ch : channels) {
      if (recorder_.subscribed(ch) != 1) return false;
    }
    return true;
  }));
  Reply killed = redis_->Run({"CLIENT", "KILL", "TYPE", "pubsub"});
  EXPECT_EQ(killed.integer, 1);
  // Each channel is confirmed again (its listeners re-read what they missed meanwhile)...
  ASSERT_TRUE(recorder_.WaitFor([&] {
    for (const std::string& ch : channels) {
      if (recorder_.subscribed(ch) != 2) return false;
    }
    return true;
  }));
  OnLoop([&] { EXPECT_EQ(sub_->resubscribes(), channels.size()); });
  // ...and messages flow again.
  for (const std::string& ch : channels) {
    EXPECT_EQ(ShardSubscribers(ch), 1);
    redis_->Run({"SPUBLISH", ch, "after"});
  }
  ASSERT_TRUE(recorder_.WaitFor([&] {
    for (const std::string& ch : channels) {
      if (recorder_.messages(ch).size() != 1) return false;
    }
    return true;
  }));

  // A restart of the server (no pub/sub state survives it) is followed the same way.
  redis_->Kill();
  redis_->Restart();
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.subscribed(channels[0]) == 3; }));
  redis_->Run({"SPUBLISH", channels[0], "restarted"});
  ASSERT_TRUE(recorder_.WaitFor([&] { return recorder_.messages(channels[0]).size() == 2; }));
}

}  // namespace
}  // namespace onestory::redis
