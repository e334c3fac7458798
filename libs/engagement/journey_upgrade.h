// UpgradeJourneyKeys: a one-time step at server start that moves the tenant-wide keys an
// earlier version wrote on a single Redis into the bucket layout every function keeps now
// (keys::kTenantBuckets buckets per tenant, keys::kDueBuckets for the due-promise index).
//
// What it moves, per tenant, when found:
// - the journey before buckets, "os:{<tenant>:j}:..." (keys::TenantKeys(tenant)): the open-case
//   index (each entry into the bucket of the customer it names, where the case functions'
//   later entries go), the counters (added to bucket 0's: readers sum the buckets), the stays
//   rings (into bucket 0's, before the stays it recorded since) and the outboxes' high-water
//   marks (each into its customer's bucket, the greater kept), so no entry applied before is
//   applied twice. The stage list stays where it is (one key, read as before);
// - the still older per-stage keys "os:{<tenant>:j}:open:<stage>" (a zset of "<customer>|<case>"
//   scored by the ms the case entered the stage) and "...:dur:<stage>" (a list of completed stays,
//   newest first), first folded into the journey before buckets (engagement_journey_upgrade,
//   kUpgradeChunk members of a zset per call, each taken from the old key as it is folded),
//   then moved with it;
// - the activity index "os:{<tenant>:r}:active" (each customer into its bucket, the later time
//   kept), after adding the tenant to the tenant registry (keys::TenantRegistryKey);
// - the due-promise index "os:{alerts}:due" and its marks (each promise and mark into the bucket
//   of its "<tenant>|<customer>"; a promise the bucket holds already is kept).
// Each key is moved in chunks of kUpgradeChunk entries, each chunk one call of
// engagement_bucket_upgrade that moves only entries the old key still holds as read and removes
// them from it: a step interrupted anywhere is finished by the next start, and nothing is
// counted twice. Once all is moved it sets keys::BucketUpgradeKey, and later starts skip the
// step (and its SCAN). Each key moved is logged ("journey.upgraded").
//
// On a Redis Cluster it does nothing: the earlier version could not run on one, so no data of
// the old layout exists there (and SCAN would see one node only).
//
//   absl::StatusOr<int> moved = engagement::UpgradeJourneyKeys(client);
//
// Blocks the caller: start-up and tools only, never a reactor or the client's loop thread.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::engagement {

// Entries moved or folded per call.
inline constexpr int kUpgradeChunk = 500;

// Returns how many old keys were moved or folded (0 on a cluster, or when the upgrade ran
// before). A key whose name does not parse (a tenant or stage that would not validate) is
// logged and left alone. Errors: as the commands failed (UNAVAILABLE, DEADLINE_EXCEEDED); the
// next start goes on where it stopped.
absl::StatusOr<int> UpgradeJourneyKeys(redis::Client* client,
                                       absl::Duration timeout = absl::Seconds(30));

}  // namespace onestory::engagement
