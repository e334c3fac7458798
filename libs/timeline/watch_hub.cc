#include "libs/timeline/watch_hub.h"

#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace onestory::timeline {

WatchHub::WatchHub(redis::Client* client) : client_(client) {
  redis::Subscriber::Callbacks callbacks;
  callbacks.on_message = [this](absl::string_view channel, absl::string_view message) {
    NotifyChannel(channel, message);
  };
  callbacks.on_subscribed = [this](absl::string_view channel) { NotifyChannel(channel, ""); };
  subscriber_ = std::make_unique<redis::Subscriber>(client_->loop(), client_->options(),
                                                    std::move(callbacks));
  redis::ShardedSubscriber::Callbacks sharded;
  sharded.on_message = [this](absl::string_view channel, absl::string_view message) {
    NotifyChannel(channel, message);
  };
  sharded.on_subscribed = [this](absl::string_view channel) { NotifyChannel(channel, ""); };
  absl::Notification started;
  client_->loop()->Post([this, &started, sharded = std::move(sharded)]() mutable {
    // The router is the client's loop-thread state: read here.
    sharded_ = std::make_unique<redis::ShardedSubscriber>(client_->loop(), client_->options(),
                                                          client_->router(), std::move(sharded));
    subscriber_->Start();
    sharded_->Start();
    started.Notify();
    tick_timer_ = client_->loop()->RunAfter(absl::Seconds(1), [this] { Tick(); });
  });
  started.WaitForNotification();
}

WatchHub::~WatchHub() {
  stopping_ = true;
  absl::Notification stopped;
  // The loop (owned by the client) outlives the hub: stop and destroy everything it could call
  // on the loop thread itself.
  client_->loop()->Post([this, &stopped] {
    client_->loop()->Cancel(tick_timer_);
    subscriber_->Stop();
    subscriber_.reset();
    sharded_->Stop();
    sharded_.reset();
    stopped.Notify();
  });
  stopped.WaitForNotification();
}

void WatchHub::Add(const std::string& channel, Listener* listener, PubSub pubsub) {
  ++listeners_;
  client_->loop()->Post([this, channel, listener, pubsub] {
    auto [it, added] = by_channel_.try_emplace(channel);
    if (added) it->second.pubsub = pubsub;
    it->second.listeners.insert(listener);
    // OnNotify follows once Redis confirms (at once when it is subscribed already).
    if (it->second.pubsub == PubSub::kSharded) {
      sharded_->Subscribe(channel);
    } else {
      subscriber_->Subscribe(channel);
    }
  });
}

void WatchHub::Remove(const std::string& channel, Listener* listener,
                      absl::AnyInvocable<void()> removed) {
  client_->loop()->Post([this, channel, listener, removed = std::move(removed)]() mutable {
    auto it = by_channel_.find(channel);
    if (it != by_channel_.end() && it->second.listeners.erase(listener) > 0) {
      --listeners_;
      if (it->second.listeners.empty()) {
        PubSub pubsub = it->second.pubsub;
        by_channel_.erase(it);
        if (pubsub == PubSub::kSharded) {
          sharded_->Unsubscribe(channel);
        } else {
          subscriber_->Unsubscribe(channel);
        }
      }
    }
    removed();
  });
}

void WatchHub::NotifyChannel(absl::string_view channel, absl::string_view message) {
  auto it = by_channel_.find(channel);
  if (it == by_channel_.end()) return;
  // Copy: a listener may ask to be removed from inside OnNotify (removal is posted, but be
  // safe against any change to the set while iterating).
  std::vector<Listener*> targets(it->second.listeners.begin(), it->second.listeners.end());
  for (Listener* l : targets) l->OnNotify(message);
}

void WatchHub::Tick() {
  if (stopping_) return;
  subscriber_ready_ = subscriber_->ready() && sharded_->ready();
  absl::Time now = absl::Now();
  for (auto& [channel, watched] : by_channel_) {
    for (Listener* l : watched.listeners) l->OnTick(now);
  }
  tick_timer_ = client_->loop()->RunAfter(absl::Seconds(1), [this] { Tick(); });
}

}  // namespace onestory::timeline
