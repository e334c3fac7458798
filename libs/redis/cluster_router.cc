#include "libs/redis/cluster_router.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/redis/command_keys.h"

namespace onestory::redis {
namespace {

// The slot map is read at most this often, however many calls ask for it.
constexpr absl::Duration kMinRefreshGap = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Milliseconds(200);

absl::string_view FirstWord(absl::string_view text) { return text.substr(0, text.find(' ')); }

}  // namespace

bool ParseRedirect(absl::string_view text, const std::string& from, int* slot,
                   std::string* address) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ' ');
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], slot)) return false;
  absl::string_view node = parts[2];
  size_t colon = node.rfind(':');
  if (colon == absl::string_view::npos) return false;
  if (colon == 0) {
    *address = absl::StrCat(from.substr(0, from.rfind(':')), node);
  } else {
    *address = std::string(node);
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> ParseClusterSeeds(absl::string_view list) {
  std::vector<std::string> seeds;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    std::string seed(absl::StripAsciiWhitespace(entry));
    Address address;
    if (seed.empty() || !ParseAddress(seed, &address).ok() || !address.unix_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--redis_cluster: '", seed, "' is not host:port (expected host:port[,host:port...])"));
    }
    seeds.push_back(std::move(seed));
  }
  return seeds;
}

Connection* ClusterRouter::Node::Ready(bool write) {
  bool confirm = write && connections.back()->waits_for_replicas();
  for (size_t i = 0; i < connections.size(); ++i) {
    Connection* c = connections[(next + i) % connections.size()].get();
    if (!c->ready() || c->waits_for_replicas() != confirm) continue;
    next = (next + i + 1) % connections.size();
    return c;
  }
  return nullptr;
}

ClusterRouter::ClusterRouter(EventLoop* loop, Options options)
    : loop_(loop), options_(std::move(options)) {}

ClusterRouter::~ClusterRouter() = default;

void ClusterRouter::Start() {
  for (const std::string& seed : options_.cluster_seeds) NodeAt(seed);
}

void ClusterRouter::Stop() {
  stopping_ = true;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [timer, call] : waiting) {
    loop_->Cancel(timer);
    Finish(call, absl::UnavailableError("redis: client stopped"));
  }
  for (auto& [address, node] : nodes_) {
    for (auto& c : node->connections) c->Stop();
  }
}

ClusterRouter::Node* ClusterRouter::NodeAt(const std::string& address) {
  auto it = nodes_.find(address);
  if (it != nodes_.end()) return it->second.get();
  auto node = std::make_unique<Node>();
  Options o = options_;
  o.address = address;
  // With wait_replicas, reads get connections that never carry a WAIT (no read queues behind
  // one) and writes as many of their own, the WAIT on the same connection as the write.
  Options reads = o;
  reads.wait_replicas = 0;
  for (int i = 0; i < std::max(1, options_.connections); ++i) {
    node->connections.push_back(
        std::make_unique<Connection>(loop_, reads, absl::StrCat("cluster-", address, "-", i)));
  }
  for (int i = 0; i < std::max(1, options_.connections) && o.wait_replicas > 0; ++i) {
    node->connections.push_back(
        std::make_unique<Connection>(loop_, o, absl::StrCat("cluster-", address, "-w", i)));
  }
  Node* raw = node.get();
  nodes_.emplace(address, std::move(node));
  if (!stopping_) {
    for (auto& c : raw->connections) c->Start();
  }
  return raw;
}

void ClusterRouter::AddLibrary(const FunctionLibrary* library) {
  if (std::find(libraries_.begin(), libraries_.end(), library) == libraries_.end()) {
    libraries_.push_back(library);
  }
}

std::shared_ptr<ClusterRouter::Call> ClusterRouter::NewCall(int slot, absl::Time deadline,
                                                            ReplyCallback cb) const {
  auto call = std::make_shared<Call>();
  call->slot = slot;
  call->deadline = deadline;
  call->give_up = std::min(deadline, absl::Now() + options_.command_timeout);
  call->cb = std::move(cb);
  return call;
}

void ClusterRouter::Send(int slot, Argv argv, absl::Time deadline, ReplyCallback cb) {
  std::shared_ptr<Call> call = NewCall(slot, deadline, std::move(cb));
  call->argv = std::move(argv);
  Dispatch(std::move(call));
}

void ClusterRouter::SendTransaction(int slot, Transaction commands, absl::Time deadline,
                                    ReplyCallback cb, bool in_place) {
  std::shared_ptr<Call> call = NewCall(slot, deadline, std::move(cb));
  call->transaction = std::move(commands);
  call->in_place = in_place;
  Dispatch(std::move(call));
}

void ClusterRouter::SendToPrimaries(Argv argv, absl::Time deadline, PrimariesCallback cb) {
  if (stopping_) return cb({});
  if (!map_.has_value() || map_->uncovered() > 0) {
    if (absl::Now() >= deadline) {
      std::vector<std::pair<std::string, absl::StatusOr<Reply>>> none;
      none.emplace_back(
          "", absl::UnavailableError("redis cluster: no slot map covering every slot was read"));
      return cb(std::move(none));
    }
    RequestRefresh();
    loop_->RunAfter(absl::Milliseconds(20),
                    [this, argv = std::move(argv), deadline, cb = std::move(cb)]() mutable {
                      SendToPrimaries(std::move(argv), deadline, std::move(cb));
                    });
    return;
  }
  struct Gather {
    std::vector<std::pair<std::string, absl::StatusOr<Reply>>> results;
    size_t left = 0;
    PrimariesCallback cb;
  };
  auto gather = std::make_shared<Gather>();
  std::vector<std::string> primaries = map_->Primaries();
  gather->left = primaries.size();
  gather->cb = std::move(cb);
  for (const std::string& address : primaries) {
    auto call = std::make_shared<Call>();
    call->argv = argv;
    call->deadline = deadline;
    call->give_up = deadline;
    call->pinned = address;
    call->cb = [gather, address](absl::StatusOr<Reply> r) {
      gather->results.emplace_back(address, std::move(r));
      if (--gather->left == 0) gather->cb(std::move(gather->results));
    };
    Dispatch(std::move(call));
  }
}

std::string ClusterRouter::LastSeedError() const {
  for (const std::string& seed : options_.cluster_seeds) {
    auto it = nodes_.find(seed);
    if (it == nodes_.end() || it->second->connections.front()->ready()) continue;
    const absl::Status& why = it->second->connections.front()->last_error();
    if (!why.ok()) return absl::StrCat(" (", seed, ": ", why.message(), ")");
  }
  return "";
}

void ClusterRouter::Dispatch(std::shared_ptr<Call> call) {
  if (stopping_) return Finish(call, absl::UnavailableError("redis: client stopped"));
  if (absl::Now() >= call->deadline) {
    return Finish(call,
                  absl::DeadlineExceededError("deadline passed before the redis command was sent"));
  }
  std::string address;
  bool asking = false;
  if (!call->pinned.empty()) {
    address = call->pinned;
  } else if (!call->ask.empty()) {
    address = std::move(call->ask);
    call->ask.clear();
    asking = true;
  } else if (call->slot == kAnySlot) {
    // Any primary that is up; before the map is read, any node.
    std::vector<std::string> candidates;
    if (map_.has_value()) candidates = map_->Primaries();
    if (candidates.empty()) {
      for (const auto& [a, node] : nodes_) candidates.push_back(a);
    }
    for (size_t i = 0; i < candidates.size(); ++i) {
      const std::string& a = candidates[(next_any_ + i) % candidates.size()];
      if (NodeAt(a)->Ready() != nullptr) {
        next_any_ = (next_any_ + i + 1) % candidates.size();
        address = a;
        break;
      }
    }
    if (address.empty()) {
      RequestRefresh();
      return RetryLater(call, absl::UnavailableError(absl::StrCat(
                                  "redis cluster: no node is connected", LastSeedError())));
    }
  } else {
    const std::string* primary = map_.has_value() ? map_->Primary(call->slot) : nullptr;
    if (primary == nullptr) {
      RequestRefresh();
      return RetryLater(call, absl::UnavailableError(absl::StrCat(
                                  "redis cluster: no primary known for slot ", call->slot,
                                  map_.has_value() ? "" : LastSeedError())));
    }
    address = *primary;
  }
  Node* node = NodeAt(address);
  // A write (with wait_replicas) goes with its ASKING on a connection that follows it with
  // WAIT; a resend after MOVED / ASK is written and waited for again on its new node.
  Connection* c = node->Ready(call->transaction == nullptr && IsWriteCommand(*call->argv));
  if (c == nullptr) {
    RequestRefresh();
    if (asking) call->ask = address;
    return RetryLater(call, absl::UnavailableError(
                                absl::StrCat("redis cluster: node ", address, " is not connected: ",
                                             node->connections.front()->last_error().message())));
  }
  if (asking) c->Send({"ASKING"}, call->deadline, [](absl::StatusOr<Reply>) {});
  call->asked = asking;
  ReplyCallback on_reply = [this, call, address](absl::StatusOr<Reply> r) mutable {
    OnReply(std::move(call), address, std::move(r));
  };
  if (call->transaction != nullptr) {
    c->SendTransaction(*call->transaction, call->deadline, std::move(on_reply), call->in_place);
  } else {
    c->Send(*call->argv, call->deadline, std::move(on_reply));
  }
}

void ClusterRouter::OnReply(std::shared_ptr<Call> call, const std::string& address,
                            absl::StatusOr<Reply> r) {
  if (!r.ok()) {
    // Lost with the command in flight: it may have run, so it is not sent again; the node may
    // be gone, so the map is read again.
    if (absl::IsUnavailable(r.status())) RequestRefresh();
    return Finish(call, std::move(r));
  }
  if (r->type != Reply::Type::kError) return Finish(call, std::move(r));
  absl::string_view word = FirstWord(r->str);
  if (word == "MOVED" || word == "ASK") {
    int slot = 0;
    std::string to;
    if (!call->pinned.empty() || !ParseRedirect(r->str, address, &slot, &to)) {
      return Finish(call, std::move(r));
    }
    if (word == "MOVED" && to == call->moved_from) {
      // Sent back where the last MOVED came from: the end of a slot migration reached one
      // node and not yet the other (the source names the target; the target, still
      // importing, names the source). That settles in milliseconds, so the call waits and
      // retries until its deadline; neither MOVED counts toward cluster_max_redirects.
      ++moved_;
      if (call->redirects > 0) --call->redirects;
      RequestRefresh();
      return RetryLater(std::move(call),
                        absl::UnavailableError(absl::StrCat("redis cluster: ", address, " and ", to,
                                                            " each name the other as slot ", slot,
                                                            "'s owner: ", r->str)));
    }
    if (++call->redirects > options_.cluster_max_redirects) {
      return Finish(call, absl::UnavailableError(absl::StrCat(
                              "redis cluster: more than ", options_.cluster_max_redirects,
                              " redirections; the last: ", r->str)));
    }
    if (word == "MOVED") {
      ++moved_;
      NoteMoved(slot, to);
      call->moved_from = address;
    } else {
      ++ask_;
      call->ask = to;
    }
    return Dispatch(std::move(call));
  }
  if (word == "TRYAGAIN" || word == "CLUSTERDOWN" || word == "LOADING" || word == "MASTERDOWN") {
    if (word == "TRYAGAIN") ++tryagain_;
    // A transaction's keys split by a migration: the source asks for the moved ones, the
    // target for a retry until it has them all. That ASK is no redirection loop: the retries
    // end at the call's deadline, not at cluster_max_redirects.
    if (word == "TRYAGAIN" && call->asked && call->redirects > 0) --call->redirects;
    if (word != "TRYAGAIN") RequestRefresh();
    return RetryLater(std::move(call), ErrorToStatus(r->str));
  }
  if (word == "READONLY") {
    RequestRefresh();
    return RetryLater(std::move(call),
                      absl::UnavailableError(
                          absl::StrCat("redis cluster: ", address, " is a replica now: ", r->str)));
  }
  Finish(call, std::move(r));
}

void ClusterRouter::RetryLater(std::shared_ptr<Call> call, absl::Status why) {
  absl::Time now = absl::Now();
  if (stopping_ || now + call->backoff > call->give_up) {
    if (!stopping_ && call->deadline <= now + call->backoff) {
      return Finish(call,
                    absl::DeadlineExceededError(absl::StrCat(
                        "deadline passed while redis could not serve the call: ", why.message())));
    }
    return Finish(call, std::move(why));
  }
  ++resent_;
  absl::Duration delay = call->backoff;
  call->backoff = std::min(call->backoff * 2, kMaxBackoff);
  // The id is known only once RunAfter returns; the timer runs on this thread, later.
  auto id = std::make_shared<uint64_t>(0);
  *id = loop_->RunAfter(delay, [this, id] {
    auto it = waiting_.find(*id);
    if (it == waiting_.end()) return;
    std::shared_ptr<Call> waiting = std::move(it->second);
    waiting_.erase(it);
    Dispatch(std::move(waiting));
  });
  waiting_.emplace(*id, std::move(call));
}

void ClusterRouter::Finish(std::shared_ptr<Call> call, absl::StatusOr<Reply> r) {
  if (!call->cb) return;
  ReplyCallback cb = std::move(call->cb);
  call->cb = nullptr;
  cb(std::move(r));
}

void ClusterRouter::RequestRefresh() { refresh_wanted_ = true; }

const std::string* ClusterRouter::PrimaryOf(int slot) const {
  return map_.has_value() ? map_->Primary(slot) : nullptr;
}

void ClusterRouter::NoteMoved(int slot, const std::string& address) {
  if (!map_.has_value()) map_.emplace();
  map_->Assign(slot, address);
  ++map_version_;
  RequestRefresh();
}

void ClusterRouter::Tick(absl::Time now) {
  for (auto& [address, node] : nodes_) {
    for (auto& c : node->connections) c->CheckTimeouts(now);
  }
  if (stopping_) return;
  if (now - last_refresh_ >= options_.cluster_refresh_interval) refresh_wanted_ = true;
  // A primary with no connection up may have failed: watch for its replica taking over.
  for (const std::string& p : primaries_) {
    if (NodeAt(p)->Ready() == nullptr) refresh_wanted_ = true;
  }
  if (refresh_wanted_ && !refresh_in_flight_ && now - last_refresh_ >= kMinRefreshGap) {
    Refresh(now);
  }
  for (auto it = to_load_.begin(); it != to_load_.end();) {
    if (NodeAt(*it)->Ready() == nullptr) {
      ++it;
      continue;
    }
    LoadLibraries(*it);
    to_load_.erase(it++);
  }
}

void ClusterRouter::Refresh(absl::Time now) {
  // Ask a connected node: the primaries first, then the seeds, then any other known node.
  std::vector<std::string> candidates(primaries_.begin(), primaries_.end());
  for (const std::string& s : options_.cluster_seeds) candidates.push_back(s);
  if (map_.has_value()) {
    for (const ClusterShard& shard : map_->shards()) {
      for (const ClusterNode& n : shard.nodes) candidates.push_back(n.address);
    }
  }
  Connection* c = nullptr;
  for (size_t i = 0; i < candidates.size() && c == nullptr; ++i) {
    auto it = nodes_.find(candidates[(refresh_rotation_ + i) % candidates.size()]);
    if (it != nodes_.end()) c = it->second->Ready();
  }
  ++refresh_rotation_;
  if (c == nullptr) {
    // None is up: open connections to every node the last map named (replicas too), so the
    // next tick has somewhere to ask.
    for (const std::string& a : candidates) NodeAt(a);
    return;
  }
  refresh_wanted_ = false;
  refresh_in_flight_ = true;
  last_refresh_ = now;
  c->Send({"CLUSTER", "SHARDS"}, now + options_.command_timeout, [this](absl::StatusOr<Reply> r) {
    refresh_in_flight_ = false;
    if (stopping_) return;
    if (!r.ok() || r->type == Reply::Type::kError) {
      refresh_wanted_ = true;
      Log(LogLevel::kWarning, "redis.cluster_map_failed",
          {{"error", r.ok() ? r->str : std::string(r.status().message())}});
      return;
    }
    absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(*r, options_.tls != nullptr);
    if (!map.ok()) {
      refresh_wanted_ = true;
      Log(LogLevel::kError, "redis.cluster_map_invalid",
          {{"error", std::string(map.status().message())}});
      return;
    }
    ApplyMap(*std::move(map));
  });
}

void ClusterRouter::ApplyMap(SlotMap map) {
  ++map_reads_;
  absl::flat_hash_set<std::string> primaries;
  for (const std::string& p : map.Primaries()) {
    primaries.insert(p);
    NodeAt(p);
    // A node that became a primary (a failover, a new shard) may lack the functions.
    if (!primaries_.contains(p) && !libraries_.empty()) to_load_.insert(p);
  }
  if (primaries != primaries_) {
    std::vector<std::string> listed(primaries.begin(), primaries.end());
    std::sort(listed.begin(), listed.end());
    Log(LogLevel::kInfo, "redis.cluster_primaries", {{"primaries", absl::StrJoin(listed, ",")}});
  }
  primaries_ = std::move(primaries);
  map_ = std::move(map);
  ++map_version_;
}

void ClusterRouter::LoadLibraries(const std::string& address) {
  Connection* c = NodeAt(address)->Ready();
  for (const FunctionLibrary* library : libraries_) {
    c->Send({"FUNCTION", "LOAD", std::string(library->code)},
            absl::Now() + options_.command_timeout,
            [this, library, address](absl::StatusOr<Reply> r) {
              if (r.ok() && (r->type != Reply::Type::kError || IsLibraryLoaded(r->str))) return;
              std::string why = r.ok() ? r->str : std::string(r.status().message());
              Log(LogLevel::kWarning, "redis.cluster_function_load_failed",
                  {{"node", address}, {"library", std::string(library->name)}, {"error", why}});
              // Not a primary yet, or lost: try again when it is connected; a call that finds
              // the function missing loads it too.
              if (!stopping_ && primaries_.contains(address)) to_load_.insert(address);
            });
  }
}

bool ClusterRouter::connected() const {
  if (!map_.has_value() || map_->uncovered() > 0) return false;
  for (const std::string& p : primaries_) {
    auto it = nodes_.find(p);
    if (it == nodes_.end()) return false;
    bool any = false;
    for (const auto& c : it->second->connections) any = any || c->ready();
    if (!any) return false;
  }
  return true;
}

int64_t ClusterRouter::in_flight() const {
  int64_t n = 0;
  for (const auto& [address, node] : nodes_) {
    for (const auto& c : node->connections) n += static_cast<int64_t>(c->in_flight());
  }
  return n;
}

ClusterRouter::Stats ClusterRouter::stats() const {
  Stats s;
  s.moved = moved_.load();
  s.ask = ask_.load();
  s.tryagain = tryagain_.load();
  s.resent = resent_.load();
  s.map_reads = map_reads_.load();
  return s;
}

uint64_t ClusterRouter::reconnects() const {
  uint64_t n = 0;
  for (const auto& [address, node] : nodes_) {
    for (const auto& c : node->connections) n += c->reconnects();
  }
  return n;
}

}  // namespace onestory::redis
