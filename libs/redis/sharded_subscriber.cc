#include "libs/redis/sharded_subscriber.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/redis/slot.h"

namespace onestory::redis {
namespace {

constexpr absl::Duration kTickInterval = absl::Milliseconds(100);
// MOVED answers in a row one channel follows at once; further ones wait for the next tick (a
// migration's two nodes can disagree for a moment and send it back and forth).
constexpr int kMovedAtOnce = 3;
// Every this many ticks, connections to nodes no channel uses are closed.
constexpr int kSweepEveryTicks = 10;

}  // namespace

ShardedSubscriber::ShardedSubscriber(EventLoop* loop, Options options, ClusterRouter* router,
                                     Callbacks callbacks)
    : loop_(loop),
      options_(std::move(options)),
      router_(router),
      callbacks_(std::move(callbacks)) {}

ShardedSubscriber::~ShardedSubscriber() = default;

void ShardedSubscriber::Start() {
  if (router_ == nullptr) NodeAt(options_.address);  // a single Redis: connected from the start
  timer_ = loop_->RunAfter(kTickInterval, [this] { Tick(); });
}

void ShardedSubscriber::Stop() {
  stopping_ = true;
  loop_->Cancel(timer_);
  for (auto& [address, node] : nodes_) node->conn->Stop();
}

bool ShardedSubscriber::ready() const {
  if (router_ == nullptr) {
    auto it = nodes_.find(options_.address);
    if (it == nodes_.end() || !it->second->conn->ready()) return false;
  }
  for (const auto& [name, c] : channels_) {
    if (c.wanted && c.state != State::kSubscribed) return false;
  }
  return true;
}

const std::string* ShardedSubscriber::OwnerOf(int slot) const {
  if (router_ == nullptr) return &options_.address;
  return router_->PrimaryOf(slot);
}

ShardedSubscriber::Node* ShardedSubscriber::NodeAt(const std::string& address) {
  auto it = nodes_.find(address);
  if (it != nodes_.end()) return it->second.get();
  auto node = std::make_unique<Node>();
  Options o = options_;
  o.address = address;
  RespConnection::Callbacks cbs;
  cbs.on_ready = [this, address] { OnNodeReady(address); };
  cbs.on_reply = [this, address](Reply r) { OnReply(address, r); };
  cbs.on_lost = [this, address](const absl::Status&) { OnNodeLost(address); };
  node->conn = std::make_unique<RespConnection>(
      loop_, std::move(o), absl::StrCat("sharded-pubsub-", address), std::move(cbs));
  Node* raw = node.get();
  nodes_.emplace(address, std::move(node));
  if (!stopping_) raw->conn->Start();
  return raw;
}

void ShardedSubscriber::Subscribe(const std::string& name) {
  auto [it, added] = channels_.try_emplace(name);
  Channel& c = it->second;
  if (added) c.slot = KeySlot(name);
  c.wanted = true;
  if (c.state == State::kSubscribed) {
    callbacks_.on_subscribed(name);
    return;
  }
  if (c.state == State::kNone && !unplaced_.contains(name)) Place(name, c);
  // kSubscribing: confirmation pending. kUnsubscribing: subscribed again when it is answered.
  // kNone with a node: subscribed when that node's connection is up.
}

void ShardedSubscriber::Unsubscribe(const std::string& name) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  Channel& c = it->second;
  c.wanted = false;
  if (c.state == State::kSubscribed) {
    Node* node = NodeAt(c.node);
    if (node->conn->ready()) {
      c.state = State::kUnsubscribing;
      SendUnsubscribe(node, name);
      return;
    }
    c.state = State::kNone;
  }
  if (c.state == State::kNone) {
    unplaced_.erase(name);
    channels_.erase(it);
  }
  // kSubscribing: unsubscribed once confirmed. kUnsubscribing: on its way.
}

void ShardedSubscriber::Place(const std::string& name, Channel& c) {
  c.state = State::kNone;
  const std::string* owner = OwnerOf(c.slot);
  if (owner == nullptr || stopping_) {
    c.node.clear();
    unplaced_.insert(name);
    if (router_ != nullptr) router_->RequestRefresh();
    return;
  }
  unplaced_.erase(name);
  c.node = *owner;
  Node* node = NodeAt(c.node);
  if (node->conn->ready()) SendSubscribe(node, name, c);
}

void ShardedSubscriber::SendSubscribe(Node* node, const std::string& name, Channel& c) {
  if (!node->conn->Send({"SSUBSCRIBE", name})) return;
  node->pending.push_back({true, name});
  c.state = State::kSubscribing;
}

void ShardedSubscriber::SendUnsubscribe(Node* node, const std::string& name) {
  if (node->conn->Send({"SUNSUBSCRIBE", name})) node->pending.push_back({false, name});
}

void ShardedSubscriber::OnNodeReady(const std::string& address) {
  Node* node = NodeAt(address);
  node->pending.clear();
  for (auto& [name, c] : channels_) {
    if (c.wanted && c.state == State::kNone && c.node == address) SendSubscribe(node, name, c);
  }
}

void ShardedSubscriber::OnNodeLost(const std::string& address) {
  NodeAt(address)->pending.clear();
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel& c = it->second;
    if (c.node != address || c.state == State::kNone) {
      ++it;
      continue;
    }
    if (!c.wanted) {
      channels_.erase(it++);
      continue;
    }
    // Subscribed again when the node is back, or where the map says once it is read again
    // (the node may be gone for good).
    c.state = State::kNone;
    ++it;
  }
  if (router_ != nullptr) router_->RequestRefresh();
}

void ShardedSubscriber::OnReply(const std::string& address, const Reply& reply) {
  if (reply.type == Reply::Type::kError) return OnError(address, reply.str);
  if (!reply.is_array() || reply.elements.size() < 2 || !reply.elements[0].is_string() ||
      !reply.elements[1].is_string()) {
    return;
  }
  const std::string& kind = reply.elements[0].str;
  const std::string& name = reply.elements[1].str;
  Node* node = NodeAt(address);
  if (kind == "smessage") {
    auto it = channels_.find(name);
    if (it == channels_.end() || !it->second.wanted || reply.elements.size() < 3) return;
    callbacks_.on_message(name, reply.elements[2].str);
    return;
  }
  if (kind == "ssubscribe") {
    if (!node->pending.empty() && node->pending.front().subscribe &&
        node->pending.front().channel == name) {
      node->pending.pop_front();
    }
    auto it = channels_.find(name);
    if (it == channels_.end() || it->second.node != address ||
        it->second.state != State::kSubscribing) {
      // Moved elsewhere (or forgotten) meanwhile: not wanted here.
      SendUnsubscribe(node, name);
      return;
    }
    Channel& c = it->second;
    c.state = State::kSubscribed;
    c.moved = 0;
    if (!c.wanted) {
      c.state = State::kUnsubscribing;
      SendUnsubscribe(node, name);
      return;
    }
    if (c.confirmed_once) ++resubscribes_;
    c.confirmed_once = true;
    callbacks_.on_subscribed(name);
    return;
  }
  if (kind == "sunsubscribe") {
    if (!node->pending.empty() && !node->pending.front().subscribe &&
        node->pending.front().channel == name) {
      node->pending.pop_front();
      return OnUnsubscribed(address, name);
    }
    // Unasked: the node no longer serves the channel's slot (migrated away, or the node is a
    // replica now). Subscribe where the map says; a stale map is corrected by MOVED.
    auto it = channels_.find(name);
    if (it == channels_.end() || it->second.node != address ||
        it->second.state != State::kSubscribed) {
      return;
    }
    Log(LogLevel::kInfo, "redis.sharded_unsubscribed", {{"node", address}, {"channel", name}});
    if (router_ != nullptr) router_->RequestRefresh();
    Place(name, it->second);
  }
}

void ShardedSubscriber::OnUnsubscribed(const std::string& address, const std::string& name) {
  auto it = channels_.find(name);
  if (it == channels_.end() || it->second.node != address ||
      it->second.state != State::kUnsubscribing) {
    return;
  }
  if (it->second.wanted) {
    Place(name, it->second);  // wanted again meanwhile
  } else {
    channels_.erase(it);
  }
}

void ShardedSubscriber::OnError(const std::string& address, const std::string& text) {
  Node* node = NodeAt(address);
  if (node->pending.empty()) {
    Log(LogLevel::kWarning, "redis.sharded_pubsub_error", {{"node", address}, {"error", text}});
    return;
  }
  Pending p = std::move(node->pending.front());
  node->pending.pop_front();
  if (!p.subscribe) return OnUnsubscribed(address, p.channel);  // not subscribed there: done
  auto it = channels_.find(p.channel);
  if (it == channels_.end() || it->second.node != address ||
      it->second.state != State::kSubscribing) {
    return;
  }
  Channel& c = it->second;
  if (!c.wanted) {
    channels_.erase(it);
    return;
  }
  int slot = 0;
  std::string to;
  if (absl::StartsWith(text, "MOVED ") && router_ != nullptr &&
      ParseRedirect(text, address, &slot, &to)) {
    router_->NoteMoved(slot, to);
    if (++c.moved <= kMovedAtOnce) return Place(p.channel, c);
  } else {
    Log(LogLevel::kWarning, "redis.sharded_subscribe_failed",
        {{"node", address}, {"channel", p.channel}, {"error", text}});
  }
  // Retried on the next tick.
  c.state = State::kNone;
  c.node.clear();
  unplaced_.insert(p.channel);
}

void ShardedSubscriber::Tick() {
  if (stopping_) return;
  if (router_ != nullptr && router_->map_version() != map_version_) {
    map_version_ = router_->map_version();
    FollowMap();
  }
  if (!unplaced_.empty()) {
    std::vector<std::string> names(unplaced_.begin(), unplaced_.end());
    unplaced_.clear();
    for (const std::string& name : names) {
      auto it = channels_.find(name);
      if (it == channels_.end() || it->second.state != State::kNone) continue;
      if (!it->second.wanted) {
        channels_.erase(it);
        continue;
      }
      it->second.moved = 0;
      Place(name, it->second);
    }
  }
  if (++ticks_ % kSweepEveryTicks == 0) {
    absl::flat_hash_set<std::string> used;
    for (const auto& [name, c] : channels_) used.insert(c.node);
    if (router_ == nullptr) used.insert(options_.address);
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (used.contains(it->first)) {
        ++it;
        continue;
      }
      it->second->conn->Stop();
      // The loop may hold a readiness event for it in this turn: destroyed after the turn.
      loop_->Post([node = std::shared_ptr<Node>(std::move(it->second))] {});
      nodes_.erase(it++);
    }
  }
  timer_ = loop_->RunAfter(kTickInterval, [this] { Tick(); });
}

void ShardedSubscriber::FollowMap() {
  for (auto& [name, c] : channels_) {
    if (!c.wanted || c.node.empty()) continue;
    const std::string* owner = OwnerOf(c.slot);
    if (owner == nullptr || *owner == c.node) continue;
    // The slot has another primary: leave the old node (if it still holds the subscription)
    // and subscribe on the new one.
    auto old = nodes_.find(c.node);
    if ((c.state == State::kSubscribed || c.state == State::kSubscribing) && old != nodes_.end() &&
        old->second->conn->ready()) {
      SendUnsubscribe(old->second.get(), name);
    }
    Place(name, c);
  }
}

}  // namespace onestory::redis
