// ShardedSubscriber: sharded pub/sub (SSUBSCRIBE) on a single Redis or a Redis Cluster, any
// number of channels, one connection per node that owns at least one of them.
//
//   ShardedSubscriber sub(client.loop(), client.options(), client.router(), {
//       .on_message = [](absl::string_view channel, absl::string_view payload) { ... },
//       .on_subscribed = [](absl::string_view channel) { ... }});
//   loop->Post([&] { sub.Start(); sub.Subscribe("os:{t:c:cus_1}:n"); });
//
// A message published with SPUBLISH stays on the shard that owns its channel's slot (classic
// PUBLISH is copied to every node over the cluster bus), so a shard channel can only be
// subscribed on that node: channels are grouped by the primary of their slot (the Client's
// ClusterRouter map; a single Redis: Options::address), each node with one RespConnection
// (resp_connection.h, AUTH as configured) carrying one SSUBSCRIBE per channel.
//
// on_subscribed fires whenever Redis confirms a channel's subscription: the first time, and
// after every resubscription, which happens when
//   - the node answers SSUBSCRIBE with MOVED (the router's map is updated, the channel is
//     subscribed on the node named; CLUSTERDOWN, TRYAGAIN and other errors retry after 100 ms);
//   - the node sends `sunsubscribe` unasked (its slot migrated away, or it failed over to a
//     replica): the channel is subscribed where the map says, following MOVED;
//   - the router's slot map names another primary for the channel's slot;
//   - the node's connection is lost: subscribed again once it, or the slot's new primary, is up.
// Messages published between losing a subscription and its confirmation are not delivered:
// a listener treats on_subscribed as "re-read your state" (TimelineService.Watch re-reads its
// timeline from its cursor, so it misses nothing and sends nothing twice). A message may also
// arrive twice or from the old node while a channel moves; it is a wake-up, not data.
//
// Unsubscribe is sent lazily and never races a re-subscribe of the same channel. Memory: one
// hash entry per channel (its name, slot and state) and, per node, its connection and the
// commands awaiting an answer.
//
// Loop thread only (construct anywhere; Start, Stop and the methods on the loop). `router`
// must outlive it (the Client's, client.router(); null on a single Redis).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "libs/redis/cluster_router.h"
#include "libs/redis/event_loop.h"
#include "libs/redis/options.h"
#include "libs/redis/reply.h"
#include "libs/redis/resp_connection.h"

namespace onestory::redis {

class ShardedSubscriber {
 public:
  struct Callbacks {
    absl::AnyInvocable<void(absl::string_view channel, absl::string_view payload)> on_message;
    absl::AnyInvocable<void(absl::string_view channel)> on_subscribed;
  };

  ShardedSubscriber(EventLoop* loop, Options options, ClusterRouter* router, Callbacks callbacks);
  ~ShardedSubscriber();
  ShardedSubscriber(const ShardedSubscriber&) = delete;
  ShardedSubscriber& operator=(const ShardedSubscriber&) = delete;

  // Starts following the slot map (a timer, every 100 ms). A single Redis: connects at once.
  void Start();
  // Closes every connection; nothing is called back afterwards.
  void Stop();

  // Wants channel subscribed. Confirmation comes through on_subscribed (at once when it already
  // is subscribed).
  void Subscribe(const std::string& channel);
  // No longer wants channel.
  void Unsubscribe(const std::string& channel);

  // Channels wanted or still being unsubscribed.
  size_t channels() const { return channels_.size(); }
  // Every wanted channel is subscribed, and (a single Redis) the connection is up.
  bool ready() const;
  // Subscriptions confirmed again after the first (a MOVED, a server's sunsubscribe, a new
  // owner in the map, a reconnect).
  uint64_t resubscribes() const { return resubscribes_; }
  // Connections open, one per node.
  size_t nodes() const { return nodes_.size(); }

 private:
  enum class State { kNone, kSubscribing, kSubscribed, kUnsubscribing };
  struct Channel {
    int slot = 0;
    bool wanted = false;
    bool confirmed_once = false;
    State state = State::kNone;
    std::string node;  // where it is (being) subscribed, or waits for a connection; "" none
    int moved = 0;     // MOVED answers in a row
  };
  // A command sent on a node's connection, answered in order.
  struct Pending {
    bool subscribe = false;
    std::string channel;
  };
  struct Node {
    std::unique_ptr<RespConnection> conn;
    std::deque<Pending> pending;
  };

  // The node that owns slot now, or null when none is known.
  const std::string* OwnerOf(int slot) const;
  Node* NodeAt(const std::string& address);
  // Subscribes a channel in State::kNone where its slot's owner is (or waits for it).
  void Place(const std::string& name, Channel& c);
  void SendSubscribe(Node* node, const std::string& name, Channel& c);
  void SendUnsubscribe(Node* node, const std::string& name);
  void OnNodeReady(const std::string& address);
  void OnNodeLost(const std::string& address);
  void OnReply(const std::string& address, const Reply& reply);
  void OnError(const std::string& address, const std::string& text);
  void OnUnsubscribed(const std::string& address, const std::string& name);
  void Tick();
  // Places the channels whose owner changed in the map, and closes nodes no channel uses.
  void FollowMap();

  EventLoop* loop_;
  Options options_;
  ClusterRouter* router_;
  Callbacks callbacks_;
  bool stopping_ = false;
  absl::flat_hash_map<std::string, Channel> channels_;
  absl::flat_hash_set<std::string> unplaced_;  // wanted, in kNone, with no known owner
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  uint64_t map_version_ = 0;
  int ticks_ = 0;
  uint64_t timer_ = 0;
  uint64_t resubscribes_ = 0;
};

}  // namespace onestory::redis
