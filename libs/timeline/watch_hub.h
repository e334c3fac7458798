// WatchHub: wakes this instance's timeline watchers when any instance appends.
//
//   WatchHub hub(&redis_client);
//   hub.Add(channel, listener);      // listener->OnNotify() once subscribed, then per append
//   hub.Remove(channel, listener, [] { /* the hub will not call listener again */ });
//   hub.Add(alert_channel, listener, WatchHub::PubSub::kClassic);  // a PUBLISH channel
//
// A customer's notify channel (keys::CustomerKeys::channel()) is a shard channel: the functions
// that write a customer's timeline (append, conversations and cases, merge, erase) announce it
// with SPUBLISH, which a Redis Cluster keeps on the customer's own shard. The hub subscribes
// it with a redis::ShardedSubscriber (one connection per node that owns a watched channel's
// slot; one connection on a single Redis). A channel published with classic PUBLISH (the
// tenant alert channel) is added with PubSub::kClassic and carried by one redis::Subscriber
// connection (to Options::address; on a cluster, the first seed).
//
// A channel is subscribed while at least one listener watches it. OnNotify means "read your
// timeline from your cursor": it fires when a subscription is confirmed (so a listener that
// starts reading then cannot miss an append), on every publish, and after every resubscription
// (a reconnect; on a cluster also a failover, a slot migration or a MOVED: publishes in between
// are not delivered, the re-read finds their events). Listeners also get OnTick about once a
// second, to enforce their own time limits.
//
// Add/Remove are thread-safe. Listener calls run on the Redis loop thread and must not block.
// Memory per watcher, as with one classic connection: one set entry per listener; per watched
// channel, one hash entry here and one in its subscriber (name, slot, state).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"
#include "libs/redis/sharded_subscriber.h"
#include "libs/redis/subscriber.h"

namespace onestory::timeline {

class WatchHub {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // `message` is what the append (a stream id) or a merge ("merged", "unmerged") published;
    // empty when the subscription was confirmed.
    virtual void OnNotify(absl::string_view message) = 0;
    virtual void OnTick(absl::Time now) = 0;
  };

  // How a channel is published on.
  enum class PubSub {
    kSharded,  // SPUBLISH: customers' notify channels
    kClassic,  // PUBLISH: the tenant alert channel
  };

  explicit WatchHub(redis::Client* client);
  ~WatchHub();

  // A channel is watched one way: `pubsub` of its first listener counts while it has any.
  void Add(const std::string& channel, Listener* listener, PubSub pubsub = PubSub::kSharded);
  // `removed` runs on the loop thread once the listener is out of the hub.
  void Remove(const std::string& channel, Listener* listener, absl::AnyInvocable<void()> removed);

  // Listeners registered now.
  int64_t listeners() const { return listeners_.load(); }
  bool subscriber_connected() const { return subscriber_ready_.load(); }

 private:
  void Tick();
  void NotifyChannel(absl::string_view channel, absl::string_view message);

  redis::Client* client_;
  struct Watched {
    PubSub pubsub = PubSub::kSharded;
    absl::flat_hash_set<Listener*> listeners;
  };

  std::unique_ptr<redis::Subscriber> subscriber_;         // kClassic; loop thread only
  std::unique_ptr<redis::ShardedSubscriber> sharded_;     // kSharded; loop thread only
  absl::flat_hash_map<std::string, Watched> by_channel_;  // loop thread only
  uint64_t tick_timer_ = 0;                               // loop thread only
  std::atomic<int64_t> listeners_{0};
  std::atomic<bool> subscriber_ready_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace onestory::timeline
