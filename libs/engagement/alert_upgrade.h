// UpgradeAlertKeys: a step at server start that moves alerts an earlier version wrote into the
// bucket layout every alert call keeps now (keys::TenantKeys(tenant, bucket): an alert in the
// bucket of its customer).
//
// The earlier layout had one set of alert keys per tenant, keys::TenantKeys(tenant): the log
// "os:{<tenant>:a}:log", the ids hash, the open alerts and the acknowledgements. UpgradeAlertKeys
// finds them with SCAN and moves them in chunks of 100, oldest first: each alert with its open
// score and acknowledgement by one call of engagement_alert_upgrade in its bucket's slot (an id
// the bucket holds already is left alone), then deleted from the old keys (the
// old log by outbox_delete: XDEL, and DEL once empty). The ids whose log
// entry was trimmed move too (so a trimmed alert is never raised again). A step interrupted
// anywhere is finished by the next start; a second run finds nothing, and the first start that
// finds nothing sets "os:{tenants}:upgraded.alerts", so later starts skip the SCAN. An alert keeps
// its stream id when its bucket holds only older ones, the usual case, so cursors and page tokens
// issued before the upgrade resume exactly (AlertStore reads them as that stream id in every
// bucket). Each tenant moved is logged ("alerts.upgraded").
//
//   absl::StatusOr<int> moved = engagement::UpgradeAlertKeys(client);
//
// For a single Redis (SCAN walks one server; the earlier layout never ran on a cluster, where
// it returns 0 at once). Blocks the caller: start-up and tools only, never a reactor or the
// client's loop thread.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::engagement {

// Returns how many alerts (and ids left of trimmed alerts) were moved. A key whose tenant does
// not validate, or an alert whose id names no customer, is logged and left alone. Errors: as the
// commands failed (UNAVAILABLE, DEADLINE_EXCEEDED).
absl::StatusOr<int> UpgradeAlertKeys(redis::Client* client,
                                     absl::Duration timeout = absl::Seconds(30));

}  // namespace onestory::engagement
