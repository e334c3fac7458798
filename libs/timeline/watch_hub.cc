#include "libs/timeline/watch_hub.h"

#include <vector>

#include "absl/hash/hash.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace onestory::timeline {

WatchHub::WatchHub(redis::Client* client) : client_(client) {
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
    sharded_->Start();
    started.Notify();
    tick_timer_ = client_->loop()->RunAfter(absl::Seconds(1) / kTickSlices, [this] { Tick(); });
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
    sharded_->Stop();
    sharded_.reset();
    stopped.Notify();
  });
  stopped.WaitForNotification();
}

void WatchHub::Add(const std::string& channel, Listener* listener) {
  ++listeners_;
  client_->loop()->Post([this, channel, listener] {
    if (by_channel_[channel].insert(listener).second) ++TickSliceOf(listener)[listener];
    // OnNotify follows once Redis confirms (at once when it is subscribed already).
    sharded_->Subscribe(channel);
  });
}

void WatchHub::Remove(const std::string& channel, Listener* listener,
                      absl::AnyInvocable<void()> removed) {
  client_->loop()->Post([this, channel, listener, removed = std::move(removed)]() mutable {
    auto it = by_channel_.find(channel);
    if (it != by_channel_.end() && it->second.erase(listener) > 0) {
      --listeners_;
      absl::flat_hash_map<Listener*, int>& slice = TickSliceOf(listener);
      if (--slice[listener] == 0) slice.erase(listener);
      if (it->second.empty()) {
        by_channel_.erase(it);
        sharded_->Unsubscribe(channel);
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
  std::vector<Listener*> targets(it->second.begin(), it->second.end());
  for (Listener* l : targets) l->OnNotify(message);
}

absl::flat_hash_map<WatchHub::Listener*, int>& WatchHub::TickSliceOf(Listener* listener) {
  return tick_slices_[absl::HashOf(listener) % kTickSlices];
}

void WatchHub::Tick() {
  if (stopping_) return;
  subscriber_ready_ = sharded_->ready();
  absl::Time now = absl::Now();
  // Copy, as NotifyChannel does: the set must not change under the loop.
  const absl::flat_hash_map<Listener*, int>& slice = tick_slices_[next_tick_slice_];
  std::vector<Listener*> targets;
  targets.reserve(slice.size());
  for (const auto& [listener, registrations] : slice) targets.push_back(listener);
  for (Listener* l : targets) l->OnTick(now);
  next_tick_slice_ = (next_tick_slice_ + 1) % kTickSlices;
  tick_timer_ = client_->loop()->RunAfter(absl::Seconds(1) / kTickSlices, [this] { Tick(); });
}

}  // namespace onestory::timeline
