// ClusterRouter: sends commands to the Redis Cluster primary that serves their hash slot, and is
// the one place where the cluster's redirections are handled. The Client runs one in cluster
// mode (Options::cluster_seeds); callers keep using the Client.
//
// It keeps a SlotMap read with CLUSTER SHARDS from any connected node (first from a seed), and
// Options::connections pipelined Connections to every primary. A call (its slot from
// command_keys.h) goes to its slot's primary; the reply decides what happens next:
//
//   MOVED <slot> <node>    the slot has a new owner: the map is updated at once (and read again
//                          soon), the command is sent to the new owner.
//   ASK <slot> <node>      the slot is migrating and this key is on the target: ASKING and the
//                          command are sent to <node> once; the map is unchanged.
//   TRYAGAIN, CLUSTERDOWN, keys of a multi-key call are split by a migration, or the cluster
//   LOADING, MASTERDOWN    cannot serve now: sent again after a backoff (10 ms doubling to
//                          200 ms), CLUSTERDOWN also reading the map again.
//   MOVED back             to the node whose MOVED the call just followed: a migration's end
//                          has reached one of the two nodes only. Resent after a backoff, not
//                          counted as a redirection.
//   READONLY               the map is stale (the node is a replica now): read again, resend.
//   a node not connected   (killed, failing over) the map is read again and the command sent
//                          when its slot's primary is connected.
//
// All of these mean Redis did not run the command, so sending it again cannot run it twice.
// The resends stop at the caller's deadline or Options::command_timeout after the call, whichever
// is first (then DEADLINE_EXCEEDED or UNAVAILABLE naming the last reason), and after
// Options::cluster_max_redirects redirections. A command whose connection is lost while it is
// in flight is not resent (it may have run): it fails with UNAVAILABLE, as on a single Redis.
//
// Function libraries the client has used (AddLibrary) are loaded with FUNCTION LOAD on every
// node that becomes a primary (a failover, a new shard); the Client also loads and retries when
// a primary answers that a function is missing.
//
// Loop thread only (the Client posts to it), except construction.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/redis/connection.h"
#include "libs/redis/event_loop.h"
#include "libs/redis/function_library.h"
#include "libs/redis/options.h"
#include "libs/redis/reply.h"
#include "libs/redis/slot_map.h"

namespace onestory::redis {

// The seed list of --redis_cluster: "host:port[,host:port...]". INVALID_ARGUMENT naming the
// entry that is not a host:port (a unix socket cannot be a cluster node).
absl::StatusOr<std::vector<std::string>> ParseClusterSeeds(absl::string_view list);

// Reads a "MOVED <slot> <node>" or "ASK <slot> <node>" error text into slot and the node's
// address; an empty host ("MOVED 3999 :6381") is the host of `from`, the node that answered.
// False when the text has another shape.
bool ParseRedirect(absl::string_view text, const std::string& from, int* slot,
                   std::string* address);

class ClusterRouter {
 public:
  using Argv = std::shared_ptr<const std::vector<std::string>>;
  using Transaction = std::shared_ptr<const std::vector<std::vector<std::string>>>;
  // One result per primary, by address.
  using PrimariesCallback =
      absl::AnyInvocable<void(std::vector<std::pair<std::string, absl::StatusOr<Reply>>>)>;

  ClusterRouter(EventLoop* loop, Options options);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  // Connects to the seeds and reads the slot map.
  void Start();
  // Fails every waiting call with UNAVAILABLE and closes every connection.
  void Stop();

  // Sends argv to the primary of slot (kAnySlot: any primary), following redirections. cb gets
  // the reply; an error reply other than the redirections above arrives as a Reply of
  // Type::kError.
  void Send(int slot, Argv argv, absl::Time deadline, ReplyCallback cb);
  // The same for a read-only transaction (Connection::SendTransaction, `in_place` too): a
  // refusal of one of its commands is followed like a command's.
  void SendTransaction(int slot, Transaction commands, absl::Time deadline, ReplyCallback cb,
                       bool in_place = false);
  // Sends argv to every primary (once the map covers every slot, waiting until deadline).
  void SendToPrimaries(Argv argv, absl::Time deadline, PrimariesCallback cb);
  // FUNCTION LOAD of library on every node that becomes a primary from now on.
  void AddLibrary(const FunctionLibrary* library);

  // Fails overdue commands, reads the map when due, loads libraries on new primaries. Called
  // by the Client's timer.
  void Tick(absl::Time now);

  // What a ShardedSubscriber (sharded_subscriber.h) needs to follow the slots it listens on.
  // The address of slot's primary in the current map; null before the first map and while no
  // primary serves the slot.
  const std::string* PrimaryOf(int slot) const;
  // Grows whenever the map may have changed (read again, or a MOVED applied).
  uint64_t map_version() const { return map_version_; }
  // A node answered MOVED <slot> <address> to a command sent outside the router: the map is
  // updated at once and read again soon, as for the router's own calls.
  void NoteMoved(int slot, const std::string& address);
  // Something (a lost connection, a server's unsubscription) suggests the map is stale: it is
  // read again soon (at most every 100 ms).
  void RequestRefresh();

  // The map covers every slot and every primary has a connection up.
  bool connected() const;
  int64_t in_flight() const;
  uint64_t reconnects() const;
  // What the router has met so far. Thread-safe.
  struct Stats {
    uint64_t moved = 0;      // MOVED redirections followed
    uint64_t ask = 0;        // ASK redirections followed
    uint64_t tryagain = 0;   // TRYAGAIN answers resent
    uint64_t resent = 0;     // resends after a backoff, for any reason
    uint64_t map_reads = 0;  // slot maps read
  };
  Stats stats() const;

 private:
  struct Node {
    // With Options::wait_replicas, half of them confirm writes with WAIT (connection.h).
    std::vector<std::unique_ptr<Connection>> connections;
    size_t next = 0;
    // A connection that is up, round-robin; null when none is. `write`: one for a write
    // (IsWriteCommand), which with wait_replicas is one that confirms it.
    Connection* Ready(bool write = false);
  };
  // One caller's command through its redirections and resends.
  struct Call {
    int slot = -1;
    Argv argv;
    Transaction transaction;  // instead of argv: MULTI, these, EXEC
    bool in_place = false;    // EXEC's array as Type::kArrayView
    absl::Time deadline;      // the caller's
    absl::Time give_up;       // deadline or command_timeout after the call, the earlier
    ReplyCallback cb;
    int redirects = 0;
    absl::Duration backoff = absl::Milliseconds(10);
    std::string ask;         // set after ASK: the next send goes there, with ASKING
    bool asked = false;      // the last send went with ASKING
    std::string moved_from;  // the node whose MOVED the last redirection followed
    std::string pinned;      // SendToPrimaries: always this node
  };

  // A call to slot's primary, giving up at deadline or command_timeout from now.
  std::shared_ptr<Call> NewCall(int slot, absl::Time deadline, ReplyCallback cb) const;
  void Dispatch(std::shared_ptr<Call> call);
  void OnReply(std::shared_ptr<Call> call, const std::string& address, absl::StatusOr<Reply> r);
  // Sends call again after its backoff, or fails it with why when that is past give_up.
  void RetryLater(std::shared_ptr<Call> call, absl::Status why);
  void Finish(std::shared_ptr<Call> call, absl::StatusOr<Reply> r);
  Node* NodeAt(const std::string& address);
  void Refresh(absl::Time now);
  void ApplyMap(SlotMap map);
  void LoadLibraries(const std::string& address);
  // " (<seed>: <why its connection is not up>)" for the first seed that is not connected, else
  // "".
  std::string LastSeedError() const;

  EventLoop* loop_;
  Options options_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<Node>> nodes_;  // by address
  std::optional<SlotMap> map_;
  uint64_t map_version_ = 0;
  absl::flat_hash_set<std::string> primaries_;  // of map_, to notice new ones
  size_t next_any_ = 0;
  bool refresh_wanted_ = true;
  bool refresh_in_flight_ = false;
  absl::Time last_refresh_ = absl::InfinitePast();
  size_t refresh_rotation_ = 0;
  std::atomic<uint64_t> moved_{0}, ask_{0}, tryagain_{0}, resent_{0}, map_reads_{0};
  std::vector<const FunctionLibrary*> libraries_;
  absl::flat_hash_set<std::string> to_load_;  // new primaries still to be given the libraries
  // Calls waiting for a resend, by timer id, so Stop can fail them.
  absl::flat_hash_map<uint64_t, std::shared_ptr<Call>> waiting_;
};

}  // namespace onestory::redis
