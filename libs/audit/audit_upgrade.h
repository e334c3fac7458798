// UpgradeAuditKeys: a step at server start that moves audit entries an earlier version wrote
// into the bucket layout AuditLog keeps now (keys::TenantKeys(tenant, bucket).audit_log()).
//
// The earlier layout had one stream per tenant, "os:{<tenant>:au}:log". UpgradeAuditKeys finds
// them with SCAN and moves each in chunks of 100 entries, oldest first: an entry goes to the
// bucket AuditLog would write it to now (its customer's, keys::TenantBucket; an entry naming no
// customer to the bucket of its stream id, TenantBucket(stream id), so a rerun picks the same
// one), by one call of audit_upgrade per bucket, then the chunk is deleted from the old stream
// (outbox_delete: XDEL, and DEL once empty). An entry keeps its stream id when its bucket holds
// only older ones, the usual case, and a rerun after a crash between the two then moves nothing
// twice; an entry older than what its bucket already holds gets a new id, and would be written
// twice if the process died between writing and deleting it (never lost). Page tokens issued
// before the upgrade resume exactly over entries that kept their ids. Each tenant moved is
// logged ("audit.upgraded"). The first start that finds nothing to move sets
// "os:{tenants}:upgraded.audit", so later starts skip the SCAN.
//
//   absl::StatusOr<int> moved = audit::UpgradeAuditKeys(client);
//
// For a single Redis (SCAN walks one server; the earlier layout never ran on a cluster, where
// it returns 0 at once). Blocks the caller: start-up and tools only.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::audit {

// Returns how many entries were written into buckets. Errors: as the commands failed
// (UNAVAILABLE, DEADLINE_EXCEEDED).
absl::StatusOr<int> UpgradeAuditKeys(redis::Client* client,
                                     absl::Duration timeout = absl::Seconds(30));

}  // namespace onestory::audit
