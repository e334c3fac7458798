// Sweeper: finishes the drains a crash, a timeout or a Redis failover left undone
// (libs/outbox/outbox.h). A server thread runs it every few seconds.
//
//   outbox::Sweeper sweeper(client);
//   while (!stopping) {
//     outbox::Sweeper::Stats s = sweeper.RunOnce(absl::Now() + absl::Seconds(20));
//     ...wait Options::interval...
//   }
//
// Where it looks: the kOutboxBuckets pending-outbox keys (keys::PendingOutboxKey), not a
// SCAN, so it sees every node of a cluster. It drains the outboxes whose mark has not moved
// since its previous pass: an outbox marked meanwhile has a call settling it right now. An
// effect therefore waits at most two passes when the instance that wrote it died.
//
// Thread-safety: RunOnce blocks until its drains have answered (or the deadline passed): call
// it from a thread of its own. Several instances may sweep at once: draining is idempotent.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::outbox {

class Sweeper {
 public:
  struct Options {
    // Marks read per bucket and pass (the rest on later passes).
    int per_bucket = 1000;
    // Drains in flight at once.
    int in_flight = 32;
  };
  struct Stats {
    int64_t marked = 0;   // marks seen
    int64_t drained = 0;  // outboxes drained
    int64_t entries = 0;  // entries applied
    int64_t errors = 0;   // reads and drains that failed (tried again next pass)
  };

  explicit Sweeper(redis::Client* client) : Sweeper(client, Options()) {}
  Sweeper(redis::Client* client, Options options) : client_(client), options_(options) {}

  Stats RunOnce(absl::Time deadline);

 private:
  redis::Client* client_;
  Options options_;
  absl::Mutex mu_;  // one RunOnce at a time
  // "<tenant>|<customer>" -> its mark at the previous pass.
  absl::flat_hash_map<std::string, int64_t> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace onestory::outbox
