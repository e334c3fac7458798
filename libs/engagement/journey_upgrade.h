// UpgradeJourneyKeys: a one-time step at server start that moves journey data an earlier
// version wrote into the layout every case function keeps now (libs/engagement/lua/journey.lua:
// one open-case index and one stays hash per tenant, keys::TenantKeys::journey_open() and
// journey_stays()).
//
// The earlier layout had, per tenant and stage, "os:{<tenant>:j}:open:<stage>" (a zset of
// "<customer>|<case>" scored by the ms the case entered the stage) and
// "os:{<tenant>:j}:dur:<stage>" (a list of the latest 1,000 completed stays in ms, newest first).
// UpgradeJourneyKeys finds them with SCAN and folds each with the function
// engagement_journey_upgrade, which declares the old key and the two new ones (one hash tag: the
// tenant's journey), keeps what the new layout holds already, and deletes the old key in the same
// call: a step interrupted anywhere is finished by the next start, and a second run finds nothing.
// GetJourneyStats and the case functions answer afterwards as they did before the upgrade. Each key
// folded is logged ("journey.upgraded").
//
//   absl::StatusOr<int> folded = engagement::UpgradeJourneyKeys(client);
//
// For a single Redis (SCAN walks one server). Blocks the caller: start-up and tools only, never
// a reactor or the client's loop thread.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::engagement {

// Returns how many old keys were folded. A key whose name does not parse (a tenant or stage
// that would not validate) is logged and left alone. Errors: as the commands failed
// (UNAVAILABLE, DEADLINE_EXCEEDED).
absl::StatusOr<int> UpgradeJourneyKeys(redis::Client* client,
                                       absl::Duration timeout = absl::Seconds(30));

}  // namespace onestory::engagement
