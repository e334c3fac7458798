// AlertStore: the tenant's proactive alerts (AlertService) and the overdue-promise scan that
// raises PROMISE_OVERDUE.
//
//   AlertStore alerts({&redis_client, &identity_store, policy});
//   alerts.List(request, deadline, [](absl::StatusOr<v1::ListAlertsResponse> r) { ... });
//   alerts.ScanDuePromises(deadline, [](absl::StatusOr<int> raised) { ... });  // every second
//
// Storage (libs/keys/key_schema.h, TenantKeys(tenant, bucket)): the tenant's alerts are spread
// over keys::kTenantBuckets buckets, an alert in the bucket of its customer
// (keys::TenantBucket; the id names the customer, so AckAlert finds the bucket from the id).
// Per bucket: a stream, one entry per alert {id, k (kind), c (customer), ca (case), msg, at},
// capped at about 100,000 entries (so a tenant keeps about 16 x 100,000, fewer when its
// customers fall unevenly into buckets); an ids hash (alert id -> stream id) that makes raising
// idempotent; a sorted set of unacknowledged ids; an acknowledgements hash; a channel announcing
// new alerts. Alerts are raised through the customer's outbox (libs/outbox: REPEAT_CONTACT and
// NEGATIVE_STREAK by the event effects, PROMISE_OVERDUE by ScanDuePromises, which any number of
// instances may run at once: each due promise is checked and raised by one call of
// engagement_alert_promise, and a raised id is never raised again). The functions are
// libs/engagement/lua/alert_*.lua.
//
// Reads merge the buckets (one function call per bucket, all in parallel) in the order of
// libs/timeline/bucket_cursor.h: (ms of the stream id, bucket, stream id), newest first for
// ListAlerts, oldest first for WatchAlerts. Page tokens and cursors hold one position per bucket
// (bucket_cursor.h), so paging and resuming are exact across buckets; a cursor or token issued
// before buckets (one stream id) is accepted and means that stream id in every bucket, which is
// exact for alerts moved by the upgrade (alert_upgrade.h keeps their stream ids).
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/engagement/customer_script.h"
#include "libs/timeline/bucket_cursor.h"
#include "onestory/v1/alert.pb.h"

namespace onestory::engagement {

inline constexpr int kDefaultAlertPageSize = 50;
inline constexpr int kMaxAlertPageSize = 500;

class AlertStore {
 public:
  explicit AlertStore(StoreContext ctx) : ctx_(ctx) {}

  void List(const v1::ListAlertsRequest& request, absl::Time deadline,
            Callback<v1::ListAlertsResponse> done);
  void Ack(const v1::AckAlertRequest& request, absl::Time deadline, Callback<v1::Alert> done);

  // For WatchAlerts: the alerts after `after`, oldest first in the merged order: at most `max`
  // read from each bucket, of which those no unread alert of another bucket precedes. Each
  // alert's cursor resumes after it.
  struct Batch {
    std::vector<v1::Alert> alerts;
    timeline::BucketPositions positions;  // after the last alert (`after` when none)
    bool more = false;                    // read again: a bucket held more than `max`
  };
  void ReadAfter(const std::string& tenant, const timeline::BucketPositions& after, int max,
                 absl::Time deadline, Callback<Batch> done);
  // Every bucket's newest alert ("0-0" for an empty bucket).
  void Head(const std::string& tenant, absl::Time deadline,
            Callback<timeline::BucketPositions> done);
  // Where WatchAlerts of `tenant` starts, from its request (INVALID_ARGUMENT for a bad cursor):
  // positions, or nullopt for "the head, once subscribed".
  static absl::StatusOr<std::optional<timeline::BucketPositions>> StartAfter(
      const v1::WatchAlertsRequest& request);
  // The channels announcing the tenant's new alerts, one per bucket.
  static std::vector<std::string> Channels(const std::string& tenant);
  // The bucket an alert id belongs to (its customer's); INVALID_ARGUMENT naming alert_id when it
  // is not "<kind>:<customer>:...".
  static absl::StatusOr<int> BucketOf(absl::string_view alert_id);

  // Raises PROMISE_OVERDUE for promises whose promised_by has passed (across tenants), up to 100
  // per bucket of the due-promise index (keys::DuePromisesKey(bucket), all read in parallel), and
  // forgets those promises. Returns how many were checked; the first error of a bucket.
  void ScanDuePromises(absl::Time deadline, Callback<int> done);

 private:
  // ScanDuePromises of one bucket.
  void ScanDueBucket(int bucket, absl::Time deadline, Callback<int> done);

  StoreContext ctx_;
};

}  // namespace onestory::engagement
