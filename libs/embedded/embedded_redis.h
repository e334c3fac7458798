// EmbeddedRedis: a redis-server child process that OneStory starts, watches and stops itself.
//
//   EmbeddedRedisOptions opts;
//   opts.data_dir = "/var/lib/onestory";
//   ASSIGN_OR_RETURN(std::unique_ptr<EmbeddedRedis> redis, EmbeddedRedis::Start(opts));
//   redis::Options client_opts;
//   client_opts.address = redis->address();   // "unix:/var/lib/onestory/redis.sock"
//
// The embedded default of onestory-server: Debian's redis-server on a unix socket under the
// data directory (mode 0700), with append-only persistence on (fsync every second by default),
// so one command gives a working, durable service. Its memory is capped (`maxmemory`, half of
// physical memory unless set) with `maxmemory-policy noeviction`: at the cap Redis refuses
// writes with an OOM error (the client maps it to RESOURCE_EXHAUSTED) instead of growing into
// swap or evicting data. With `supervise`, a redis-server that exits
// on its own is restarted (backoff 0.5 s doubling to 10 s); the child is also told to exit if
// OneStory dies (PR_SET_PDEATHSIG), so no orphan keeps the data directory busy.
//
// The integration tests use it too, with a TCP port and supervise off, to kill and restart Redis
// on purpose. Thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace onestory::embedded {

struct EmbeddedRedisOptions {
  std::string data_dir = "onestory-data";     // created if missing
  std::string redis_server = "redis-server";  // looked up on PATH
  int port = 0;                               // also listen on 127.0.0.1:port when not 0
  std::string appendfsync = "everysec";       // "always", "everysec" or "no"
  // Redis `maxmemory` in bytes; 0: DefaultMaxMemory(). Writes past it are refused (noeviction).
  uint64_t maxmemory_bytes = 0;
  bool supervise = true;  // restart redis-server when it exits on its own
  // More redis-server arguments, after OneStory's ("--tls-port", "6380", ...). Tests only.
  std::vector<std::string> extra_args;
  absl::Duration start_timeout = absl::Seconds(10);
};

// Half of the machine's physical memory: room for the data and for the copy-on-write of the
// forked child that rewrites the append-only file. 0 when the size cannot be read.
uint64_t DefaultMaxMemory();

class EmbeddedRedis {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedRedis>> Start(EmbeddedRedisOptions options);
  ~EmbeddedRedis();  // SIGTERM (Redis flushes the append-only file), then waits

  // "unix:<data_dir>/redis.sock".
  std::string address() const;
  // "127.0.0.1:<port>"; empty without a port.
  std::string tcp_address() const;
  const EmbeddedRedisOptions& options() const { return options_; }

  // For fault tests: SIGKILL the server (no flush) and wait for it to exit. With supervise on,
  // it comes back by itself.
  void Kill();
  // For fault tests, with supervise off: start it again on the same directory, socket and port.
  absl::Status Restart();

 private:
  explicit EmbeddedRedis(EmbeddedRedisOptions options);
  absl::Status Spawn();  // starts the process and waits until it answers PING
  void Supervise();

  EmbeddedRedisOptions options_;
  std::string socket_path_;
  absl::Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  std::atomic<bool> stopping_{false};
  std::thread supervisor_;
};

}  // namespace onestory::embedded
