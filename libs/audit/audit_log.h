// The audit log: per tenant, one entry per call that read or changed a customer's data (who:
// the API key id; what: the RPC; when; on which customer; the outcome), in Redis streams spread
// over keys::kTenantBuckets buckets (keys::TenantKeys(tenant, bucket).audit_log()), each trimmed
// by count (its share of `max_entries`) and by age. An entry naming a customer goes to that
// customer's bucket (keys::TenantBucket), so one customer's entries are read from one bucket;
// an entry naming none goes to the buckets in turn (a counter of this process), so a tenant's
// calls spread evenly whichever keys make them. List merges the buckets by write time.
//
//   AuditLog audit(redis, AuditLog::Options{});
//   v1::AuditEntry e;  e.set_key_id("console-eu");  e.set_method("...");  ...
//   audit.Record("acme", std::move(e));             // asynchronous; never blocks; retried
//   audit.RecordBefore("acme", std::move(e), [](absl::Status written) {
//     if (!written.ok()) ...refuse the call...       // privileged calls: no entry, no work
//   });
//   audit.List(request, deadline, [](absl::StatusOr<v1::ListAuditEntriesResponse> r) {...});
//
// No entry is lost silently. Record keeps an entry Redis refused (unreachable, out of memory)
// in memory and writes it again every `retry_interval` until it is stored; only a full buffer
// (`retry_buffer` entries) or a process that ends with entries still waiting drops any, and
// both are counted (dropped()) and logged as errors. RecordBefore is for calls whose entry must
// exist before they act (erase, export, redact, merges): it reports whether the entry was
// written and never retries, so the caller can refuse the call.
//
// Entries hold no personal data: customer ids, identifier types (never values), counts, event
// ids and the caller's free-text reason. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "onestory/v1/privacy.pb.h"

namespace onestory::audit {

class AuditLog {
 public:
  struct Options {
    // Entries older than this are trimmed as new ones arrive (XTRIM MINID ~, at most once per
    // age_trim_interval per bucket and process: a few minutes' entries past the age may stay).
    absl::Duration retention = absl::Hours(24 * 400);
    absl::Duration age_trim_interval = absl::Minutes(1);
    // A tenant's log keeps about its newest this many entries: each bucket its newest
    // max_entries / kTenantBuckets (rounded up; XADD MAXLEN ~: up to a hundred more per bucket
    // may stay until Redis can drop a whole node of the stream). About 130 bytes each.
    int64_t max_entries = 1000000;
    // Entries Record holds in memory while Redis refuses them; past this the oldest is dropped
    // (counted and logged).
    size_t retry_buffer = 100000;
    // How often held entries are written again.
    absl::Duration retry_interval = absl::Milliseconds(500);
  };
  AuditLog(redis::Client* redis, Options options);
  // Writes the held entries one last time (waiting at most a few seconds), logs an error
  // naming how many are lost if some remain, and waits for every write in flight.
  ~AuditLog();

  // Appends `entry` to the tenant's log (`at` is set to now when unset). Asynchronous: a failed
  // write is held and retried (see above), never reported to the caller's RPC, which has
  // already been answered. A retried entry keeps its `at` but is listed where it was finally
  // stored.
  void Record(absl::string_view tenant, v1::AuditEntry entry);

  // Appends `entry` now and calls `done` with OK once it is stored, or with why it is not
  // (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED when Redis is out of memory). Nothing
  // is held or retried: the caller refuses the call it was about to make.
  void RecordBefore(absl::string_view tenant, v1::AuditEntry entry, absl::Time deadline,
                    absl::AnyInvocable<void(absl::Status)> done);

  // Newest first in the order entries were written (the buckets merged by stream id, ms first,
  // then bucket: libs/timeline/bucket_cursor.h; one function call per bucket read, all at once;
  // with a customer_id only its bucket): pages of any size walk one order. Entries of one
  // millisecond in different buckets come by bucket, and an entry written late (held while
  // Redis was unreachable) where it was written: `at` says when the call happened. The page token
  // holds a position per bucket; one issued before buckets is accepted (it reads as the same stream
  // id in every bucket). INVALID_ARGUMENT for page_size or page_token.
  void List(const v1::ListAuditEntriesRequest& request, absl::Time deadline,
            Callback<v1::ListAuditEntriesResponse> done);

  uint64_t recorded() const { return recorded_.load(); }
  // Writes that failed (an entry retried three times counts three times).
  uint64_t failures() const { return failures_.load(); }
  // Entries lost: the retry buffer was full, or the process ended before they were stored.
  uint64_t dropped() const { return dropped_.load(); }
  // Entries held for a retry now.
  size_t pending() const;

 private:
  // The bucket of an entry about customer_id ('' for none).
  int BucketOf(absl::string_view customer_id);
  // An entry to write (or held for a retry), serialized once.
  struct Held {
    std::string tenant;
    std::string customer_id;
    std::string bytes;  // the serialized v1::AuditEntry
  };
  // XADD to the entry's bucket (MAXLEN ~ its share of max_entries), then, when the bucket is due
  // (age_trim_interval), XTRIM MINID ~ of entries past the retention.
  void Write(const Held& entry, absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done);
  void Hold(Held entry, const absl::Status& why);
  // Sends every held entry again; those that fail are held again.
  void RetryHeld();
  void RetryLoop();

  redis::Client* redis_;
  Options options_;
  std::atomic<uint64_t> next_bucket_{0};  // for entries naming no customer
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> dropped_{0};
  mutable absl::Mutex mu_;
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Bucket log key -> when this process last trimmed it by age.
  absl::flat_hash_map<std::string, absl::Time> last_age_trim_ ABSL_GUARDED_BY(mu_);
  int64_t last_warning_s_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification stop_;
  std::thread retry_thread_;
};

}  // namespace onestory::audit
