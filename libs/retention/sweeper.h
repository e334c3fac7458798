// Sweeper: the part of retention that appends cannot do. Appends trim the timeline they write
// to (libs/retention/trim_lua.h); the Sweeper, run periodically by a server thread,
// - expires customers with no event stored for their tenant's inactive_after: it calls the
//   erase function given to it (the server connects the privacy erase, which also audits);
// - trims, for max_age (and a lowered max_events), the timelines of customers not written
//   recently, whose events age with no append to trim them.
//
//   retention::Sweeper sweeper(redis, &policy, [&](std::string tenant, std::string id,
//                                                  Callback<bool> done) {
//     privacy->Erase(tenant, id, std::move(done));
//   });
//   while (!stopping) {
//     retention::Sweeper::Stats s = sweeper.RunOnce(absl::Now() + absl::Seconds(20));
//     ...wait a minute...
//   }
//
// Where it looks: every bucket of every tenant's activity index (keys::TenantKeys(tenant,
// bucket).activity(), zsets of customer id -> latest append ms that every append updates, a
// customer in its bucket keys::TenantBucket), the tenants read from the tenant registry
// (keys::TenantRegistryKey, a set every tenant's first activity adds it to: libs/outbox) with an
// incremental SSCAN (bounded per run); no SCAN of the keyspace, which on a cluster would see one
// node. Each tenant's buckets are walked one after the other, each in score order in bounded
// batches
// (Options::batch customers: one ZRANGE, then one pipelined script per customer that trims at
// most Options::max_trim_per_customer events), resuming where the last run stopped, so a run
// never blocks Redis for long and a large keyspace is covered over several runs. Customers
// appended to within Options::skip_recent are not walked: their appends trimmed them.
//
// Customers merged into another (their events moved) and ids with no customer any more are
// dropped from the index; customers locked by a merge in progress are left for the next pass.
//
// Thread-safety: RunOnce blocks its caller until the run's Redis commands and erase calls have
// answered (or the deadline passed): call it from a thread of its own, never a Redis callback
// or a gRPC reactor. Concurrent RunOnce calls on one Sweeper run one after the other. Several
// server instances may each run a Sweeper: trimming is idempotent, and the erase function is
// then called for the same customer by each (it must tolerate that).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "libs/retention/retention.h"

namespace onestory::retention {

class Sweeper {
 public:
  // Erases one customer of one tenant entirely. Calls `done` once, from any thread, without
  // blocking: true when the customer was erased, false when there was nothing to erase (it did
  // not exist); either way it leaves the activity index. An error leaves it there, to be tried
  // again on the next pass.
  using EraseFn =
      absl::AnyInvocable<void(std::string tenant, std::string customer_id, Callback<bool> done)>;

  struct Options {
    // Customers per step: one ZRANGE, then this many pipelined scripts.
    int batch = 500;
    // Events one script removes from one timeline at most (the rest on the next pass).
    int max_trim_per_customer = 1000;
    // Customers with an append this recent are not trimmed by the Sweeper: that append did.
    // (An event may thus outlive max_age by up to this long plus the time between passes.)
    absl::Duration skip_recent = absl::Minutes(10);
    // Erase calls in flight at once.
    int max_erases_in_flight = 8;
    // Tenant discovery: SSCAN COUNT of the tenant registry per call, and SSCAN calls per
    // RunOnce (more tenants than their product are read over several runs; tenants found stay
    // known meanwhile).
    int scan_count = 1000;
    int max_scans_per_run = 100;
    // The time limits are measured against (tests move it; absl::Now by default).
    std::function<absl::Time()> clock;
  };

  struct Stats {
    int64_t tenants = 0;            // tenants whose index was walked (wholly or in part)
    int64_t customers_checked = 0;  // customers looked at (trimmed or expired)
    int64_t events_trimmed = 0;     // events removed from timelines
    int64_t customers_expired = 0;  // customers the erase function erased
    int64_t errors = 0;             // scripts or erase calls that failed (retried next pass)
    bool finished = false;          // every known tenant's pass completed before the deadline
  };

  // `redis`, `policy` must outlive the Sweeper.
  Sweeper(redis::Client* redis, const Policy* policy, EraseFn erase);
  Sweeper(redis::Client* redis, const Policy* policy, EraseFn erase, Options options);

  // Runs until every known tenant's index has been walked once or `deadline` passes; the next
  // call continues from there. Errors are counted in Stats::errors (and logged), never fatal.
  Stats RunOnce(absl::Time deadline);

 private:
  // Where a tenant's pass stands.
  struct Cursor {
    int bucket = 0;              // the bucket of the activity index being walked
    std::string start = "-inf";  // the ZRANGE BYSCORE start of the next step
    // >= 0: a whole batch had one score, tie_score; its members are walked by offset.
    int64_t tie_offset = -1;
    int64_t tie_score = 0;
  };
  struct Member {
    std::string id;
    int64_t score = 0;  // latest activity, ms
  };
  // What one step of a tenant's pass needs.
  struct Step {
    std::string tenant;
    std::string index;                  // the activity index
    int64_t now = 0;                    // ms
    int64_t expire_before = INT64_MIN;  // members with an older score expire
    int64_t max_age_ms = 0;             // 0: none
    int64_t max_events = 0;             // 0: none
    absl::Time deadline;                // of its Redis commands
  };

  void Discover(absl::Time deadline, Stats* stats) ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  // Walks one tenant's index until its pass is done (true) or the deadline (false).
  bool SweepTenant(const std::string& tenant, absl::Time deadline, Stats* stats)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  // Trims or expires `members`; returns how many it dropped from the index.
  int64_t RunStep(const Step& step, const std::vector<Member>& members, Stats* stats)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);

  redis::Client* redis_;
  const Policy* policy_;
  Options options_;
  absl::Mutex run_mu_;  // one RunOnce at a time
  EraseFn erase_ ABSL_GUARDED_BY(run_mu_);
  std::set<std::string> tenants_ ABSL_GUARDED_BY(run_mu_);  // known
  std::set<std::string> found_ ABSL_GUARDED_BY(run_mu_);    // in this SSCAN round
  std::string scan_cursor_ ABSL_GUARDED_BY(run_mu_) = "0";
  std::map<std::string, Cursor> cursors_ ABSL_GUARDED_BY(run_mu_);  // tenant -> its pass
  std::string resume_ ABSL_GUARDED_BY(run_mu_);                     // the tenant a run stopped in
};

}  // namespace onestory::retention
