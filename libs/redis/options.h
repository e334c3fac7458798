// Options for the Redis client and subscriber.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace onestory::redis {

class TlsContext;

struct Options {
  // "host:port", "unix:/path/to/redis.sock" or "/path/to/redis.sock".
  std::string address = "127.0.0.1:6379";
  // Command connections in the pool. Commands are pipelined: each connection carries many
  // in-flight commands, so a few are enough.
  int connections = 2;
  // A connection attempt that has not completed in this time is abandoned and retried.
  absl::Duration connect_timeout = absl::Seconds(1);
  // A command that has not been answered in this time (or by its own deadline, whichever is
  // first) fails; a connection whose oldest command is this late is closed and reopened.
  absl::Duration command_timeout = absl::Seconds(5);
  // Reconnect backoff: starts at the minimum, doubles up to the maximum.
  absl::Duration reconnect_min = absl::Milliseconds(50);
  absl::Duration reconnect_max = absl::Seconds(1);
  // Sent with AUTH after connecting when not empty (user may stay empty for the default user).
  std::string user;
  std::string password;

  // Redis Cluster: seed nodes ("host:port"). When not empty the client routes over the cluster
  // (cluster_router.h) and `address` is unused: the slot map is read from any seed with CLUSTER
  // SHARDS, and `connections` connections are opened to every primary.
  std::vector<std::string> cluster_seeds;
  // The slot map is read again this often, besides at once after MOVED, READONLY, CLUSTERDOWN
  // or a lost connection.
  absl::Duration cluster_refresh_interval = absl::Seconds(5);
  // MOVED and ASK redirections one call follows before it fails with UNAVAILABLE.
  int cluster_max_redirects = 5;

  // Durability. Redis replicates asynchronously: a primary that dies before its replica has
  // a write loses it although it was answered. With wait_replicas > 0 every write (a command
  // IsWriteCommand() calls one, command_keys.h: FCALL, XADD, HSET, ...) is followed on its own
  // connection by `WAIT wait_replicas <ms>`, and its callback gets the write's reply only once
  // that many replicas have acknowledged it; when fewer do within wait_timeout (or the
  // caller's deadline, if sooner) it gets UNAVAILABLE ("stored on the primary but only K of N
  // replicas confirmed it"): the write may be kept, so callers retry it with the same ids.
  // Writes then go on connections of their own (`connections` more per node) so that reads
  // never queue behind a WAIT; writes in flight together share one WAIT. 0: off.
  int wait_replicas = 0;
  // How long one WAIT may block; at most half of command_timeout is used.
  absl::Duration wait_timeout = absl::Seconds(1);

  // TLS (tls.h): when set, every connection speaks TLS with this context (a single Redis's
  // --tls-port; a cluster's nodes with tls-cluster yes, reached at the tls-port CLUSTER SHARDS
  // gives). TCP addresses only.
  std::shared_ptr<const TlsContext> tls;
};

}  // namespace onestory::redis
