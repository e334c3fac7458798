// WatchHub: wakes this instance's watchers (timelines, alerts) when any instance writes.
//
//   WatchHub hub(&redis_client);
//   hub.Add(channel, listener);      // listener->OnNotify() once subscribed, then per publish
//   hub.Remove(channel, listener, [] { /* the hub will not call listener again */ });
//
// Every channel is a shard channel, published with SPUBLISH by a function that declares it as
// a key, so a Redis Cluster keeps the message on the shard that owns the channel's slot: a
// customer's notify channel (keys::CustomerKeys::channel(); append, conversations and cases,
// merge, erase) and a tenant alert bucket's channel (keys::TenantKeys::alert_channel();
// outbox_alerts). The hub subscribes them with one redis::ShardedSubscriber (one connection per
// node that owns a watched channel's slot; one connection on a single Redis).
//
// A channel is subscribed while at least one listener watches it. OnNotify means "read your
// timeline from your cursor": it fires when a subscription is confirmed (so a listener that
// starts reading then cannot miss an append), on every publish, and after every resubscription
// (a reconnect; on a cluster also a failover, a slot migration or a MOVED: publishes in between
// are not delivered, the re-read finds their events). Listeners also get OnTick about once a
// second, to enforce their own time limits: a fiftieth of them every 20 ms, so ticking 10,000
// watchers holds the loop thread for ~0.1 ms at a time, not ~5 ms once a second.
//
// Add/Remove are thread-safe. Listener calls run on the Redis loop thread and must not block.
// Memory: per listener, one set entry per channel it is registered on and one entry in its tick
// slice; per watched channel, one hash entry here and one in the subscriber (name, slot, state).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"
#include "libs/redis/sharded_subscriber.h"

namespace onestory::timeline {

class WatchHub {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // `message` is what was published: by an append, its entry or newest stream id
    // (timeline::PublishedEntry); by a merge, "merged" or "unmerged"; by an erasure, "erased".
    // Empty when the subscription was confirmed.
    virtual void OnNotify(absl::string_view message) = 0;
    virtual void OnTick(absl::Time now) = 0;
  };

  explicit WatchHub(redis::Client* client);
  ~WatchHub();

  void Add(const std::string& channel, Listener* listener);
  // `removed` runs on the loop thread once the listener is out of the hub.
  void Remove(const std::string& channel, Listener* listener, absl::AnyInvocable<void()> removed);

  // Listeners registered now.
  int64_t listeners() const { return listeners_.load(); }
  bool subscriber_connected() const { return subscriber_ready_.load(); }

 private:
  static constexpr int kTickSlices = 50;

  void Tick();
  void NotifyChannel(absl::string_view channel, absl::string_view message);
  absl::flat_hash_map<Listener*, int>& TickSliceOf(Listener* listener);

  redis::Client* client_;
  std::unique_ptr<redis::ShardedSubscriber> sharded_;                            // loop thread only
  absl::flat_hash_map<std::string, absl::flat_hash_set<Listener*>> by_channel_;  // loop thread
  // Each listener, with the number of channels it is registered on (two while a watch moves to
  // a merge's target), in the slice of the tick that visits it. Loop thread only.
  std::array<absl::flat_hash_map<Listener*, int>, kTickSlices> tick_slices_;
  int next_tick_slice_ = 0;  // loop thread only
  uint64_t tick_timer_ = 0;  // loop thread only
  std::atomic<int64_t> listeners_{0};
  std::atomic<bool> subscriber_ready_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace onestory::timeline
