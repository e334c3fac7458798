// Client: the asynchronous Redis client every store uses.
//
//   redis::Options opts;
//   opts.address = "unix:/var/lib/onestory/redis.sock";
//   auto client = std::make_unique<redis::Client>(opts);
//   client->Command({"GET", key}, deadline, [](absl::StatusOr<redis::Reply> r) { ... });
//   client->Fcall(lua::ContextGet{...}, deadline, [](absl::StatusOr<redis::Reply> r) { ... });
//
// Commands from any thread are handed to one event-loop thread and pipelined over a few
// connections (Options::connections), so no caller thread ever waits on Redis. Callbacks run on
// that loop thread: they must not block, and should hand heavy work elsewhere.
//
// Redis Cluster: with Options::cluster_seeds the same calls are routed to the primary serving
// their keys' hash slot (cluster_router.h follows MOVED / ASK and resends on TRYAGAIN,
// CLUSTERDOWN and failovers). The keys of one call must share a slot: a call whose keys do not
// (or a command with no key rule, command_keys.h) fails with INVALID_ARGUMENT naming them, and
// nothing is sent. Before the first slot map is read, and while a primary is failing over,
// calls wait for it up to their deadline or Options::command_timeout.
//
// Errors given to callbacks: UNAVAILABLE when no connection is up (at once, never a hang), when
// the connection is lost with the command in flight, or when Redis does not answer within
// Options::command_timeout; DEADLINE_EXCEEDED when the caller's deadline passes first; Redis
// error replies mapped by ErrorToStatus(). A command that failed with UNAVAILABLE or
// DEADLINE_EXCEEDED may or may not have run: OneStory's writes are idempotent so callers retry.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/redis/cluster_router.h"
#include "libs/redis/connection.h"
#include "libs/redis/event_loop.h"
#include "libs/redis/function_library.h"
#include "libs/redis/options.h"
#include "libs/redis/reply.h"

namespace onestory::redis {

class Client {
 public:
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one command. `deadline` is the caller's deadline (absl::InfiniteFuture() for none).
  // Redis error replies reach cb as a status (see ErrorToStatus).
  void Command(std::vector<std::string> argv, absl::Time deadline, ReplyCallback cb);

  // Calls a function of a Redis Function library (function_library.h) with FCALL, or FCALL_RO
  // when it is read-only. When Redis answers that the function is not loaded (restarted without
  // persistence, FUNCTION FLUSH, a new replica), sends FUNCTION LOAD of its library and the call
  // once more. Error replies reach cb as a status (see ErrorToStatus), the library lines a Lua
  // error names followed by their file and line; a library Redis refuses to load as
  // INVALID_ARGUMENT.
  void Fcall(const Function& function, std::vector<std::string> keys, std::vector<std::string> args,
             absl::Time deadline, ReplyCallback cb);
  // The same for a generated call (libs/lua/<function>.h): its kFunction, ToKeys(), ToArgv().
  template <typename Call>
  void Fcall(const Call& call, absl::Time deadline, ReplyCallback cb) {
    Fcall(Call::kFunction, call.ToKeys(), call.ToArgv(), deadline, std::move(cb));
  }

  // Reads with `commands` from one moment: MULTI, the commands, EXEC, nothing else running
  // between them. Only reads (IsWriteCommand false: INVALID_ARGUMENT otherwise, nothing sent);
  // on a cluster their keys share one slot, as for one command. cb gets an array of one reply
  // per command (a command that failed as it ran, e.g. WRONGTYPE, is an error reply in it).
  // With `in_place`, that array comes read in place, as Type::kArrayView (RespView): cheaper
  // than a Reply per value when there are many.
  void Snapshot(std::vector<std::vector<std::string>> commands, absl::Time deadline,
                ReplyCallback cb, bool in_place = false);

  // Blocks the calling thread until the reply arrives. For start-up checks, tools and tests;
  // never call it from the loop thread or a gRPC reactor.
  absl::StatusOr<Reply> CommandSync(std::vector<std::string> argv,
                                    absl::Duration timeout = absl::Seconds(5));

  // Runs argv on every primary of the cluster (a single Redis: on it), blocking like
  // CommandSync: one result per primary. Waits for a slot map that covers every slot.
  std::vector<absl::StatusOr<Reply>> CommandOnEveryPrimarySync(
      std::vector<std::string> argv, absl::Duration timeout = absl::Seconds(5));
  // Cluster: FUNCTION LOAD of library on every node that becomes a primary from now on
  // (LoadLibrary and Fcall call it). A single Redis: nothing.
  void RememberLibrary(const FunctionLibrary* library);

  // True when the client routes over a Redis Cluster (Options::cluster_seeds).
  bool cluster() const { return !options_.cluster_seeds.empty(); }
  // True when at least one connection is up (a cluster: the slot map covers every slot and
  // every primary has a connection up).
  bool connected() const { return connected_.load(); }
  // Commands sent and not yet answered, across connections.
  int64_t in_flight() const { return in_flight_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }
  // Redirections and resends met on a cluster (all zero on a single Redis).
  ClusterRouter::Stats cluster_stats() const {
    return router_ ? router_->stats() : ClusterRouter::Stats{};
  }

  EventLoop* loop() { return loop_.get(); }
  const Options& options() const { return options_; }
  // The cluster router (a cluster only; null on a single Redis). Loop thread only: a
  // ShardedSubscriber reads its slot map through it.
  ClusterRouter* router() { return router_.get(); }

 private:
  using Argv = std::shared_ptr<const std::vector<std::string>>;
  using Transaction = ClusterRouter::Transaction;
  // The slot a call with these keys goes to: kAnySlot on a single Redis.
  absl::StatusOr<int> SlotOf(absl::Span<const std::string> keys) const;
  // Sends argv on the loop thread: a single Redis, on the next connection that is up; a
  // cluster, to the primary of slot.
  void SendOnLoop(int slot, Argv argv, absl::Time deadline, ReplyCallback cb);
  // A single Redis: the next connection that is up for a read or a write (with wait_replicas,
  // writes have their own); null when none is. Loop thread.
  Connection* NextConnection(bool write);
  // Why no connection is up (UNAVAILABLE).
  absl::Status Unavailable() const;
  // FCALL / FCALL_RO `argv` on the loop thread; when the function is not loaded and `may_load`,
  // LoadThenCall.
  void SendFunctionCall(int slot, Argv argv, const FunctionLibrary* library, absl::Time deadline,
                        bool may_load, ReplyCallback cb);
  // FUNCTION LOAD of `library` (on the node of slot), then `argv` once more.
  void LoadThenCall(int slot, Argv argv, const FunctionLibrary* library, absl::Time deadline,
                    ReplyCallback cb);
  // Fails cb with status on the loop thread (callbacks always run there).
  void FailOnLoop(absl::Status status, ReplyCallback cb);
  void Tick();
  void UpdateStats();

  Options options_;
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::unique_ptr<Connection>> connections_;  // loop thread only after start
  std::unique_ptr<ClusterRouter> router_;                 // cluster mode; loop thread only
  size_t next_ = 0;                                       // round-robin position, loop thread
  std::atomic<bool> connected_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace onestory::redis
