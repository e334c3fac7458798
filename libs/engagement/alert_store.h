// AlertStore: the tenant's proactive alerts (AlertService) and the overdue-promise scan that
// raises PROMISE_OVERDUE.
//
//   AlertStore alerts({&redis_client, &identity_store, policy});
//   alerts.List(request, deadline, [](absl::StatusOr<v1::ListAlertsResponse> r) { ... });
//   alerts.ScanDuePromises(deadline, [](absl::StatusOr<int> raised) { ... });  // every second
//
// Storage (libs/keys/key_schema.h, TenantKeys): a stream per tenant, one entry per alert
// {id, k (kind), c (customer), ca (case), msg}, capped at about 100,000 entries; an ids hash
// (alert id -> stream id) that makes raising idempotent; a sorted set of unacknowledged ids; an
// acknowledgements hash. REPEAT_CONTACT and NEGATIVE_STREAK are raised by the event effects in
// the same function call as the event that caused them; PROMISE_OVERDUE by ScanDuePromises, which
// any number of instances may run at once: each due promise is checked and raised by one call of
// engagement_alert_promise, and a raised id is never raised again. The functions are
// libs/engagement/lua/alert_*.lua.
//
// Alert cursors and page tokens name the tenant and a stream id (timeline cursor encoding with
// "alerts:<tenant>" as the owner).
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/engagement/customer_script.h"
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

  // For WatchAlerts: up to `max` alerts after stream id `after`, oldest first.
  struct Batch {
    std::vector<v1::Alert> alerts;
    std::string last_stream_id;  // of the last alert, or `after` when none
  };
  void ReadAfter(const std::string& tenant, const std::string& after, int max, absl::Time deadline,
                 Callback<Batch> done);
  // The newest alert's stream id ("0-0" when none).
  void Head(const std::string& tenant, absl::Time deadline, Callback<std::string> done);
  // Where WatchAlerts of `tenant` starts, from its request (INVALID_ARGUMENT for a bad cursor):
  // a stream id, or empty for "the head, once subscribed".
  static absl::StatusOr<std::string> StartAfter(const v1::WatchAlertsRequest& request);
  static std::string Channel(const std::string& tenant);

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
