// libs/outbox: the effects of a customer's writes on tenant-wide keys (alerts, journey
// counters, the retention activity index), applied in those keys' own hash slots, each exactly
// once. Redis Cluster changes one slot per step; a customer's keys share one slot, a tenant's
// alert log or counters another.
//
// A function that changes a customer writes those effects, atomically with the change, as
// entries of the customer's outbox (keys::CustomerKeys::outbox, libs/outbox/lua/write.lua).
// The instance that served the call then
//   1. marks the outbox pending (ZINCRBY of "<tenant>|<customer>" in keys::PendingOutboxKey)
//      before it answers, so a crash after the answer leaves a mark the Sweeper finds;
//   2. answers, then drains: reads the entries in order, applies them per target (outbox_alerts:
//      an alert id is raised once; outbox_journey, per journey bucket of the customers the
//      entries concern, and outbox_due, per due bucket: entries up to the customer's last one
//      applied to that bucket are skipped; outbox_activity in the customer's bucket: ZADD GT,
//      the tenant registered first), deletes them, and clears the mark unless a later write
//      marked the outbox again.
// Applying is idempotent, so a retry, a crash between two steps or two instances draining the
// same outbox change nothing twice. Entries are applied in the order written.
//
//   outbox::Settle(client, tenant, customer_id, deadline, [done](absl::Status st) {
//     ... answer the caller: st is an error when the mark could not be written ...
//   });
//
// Thread-safe; callbacks run on the Redis loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "libs/steps/steps.h"

namespace onestory::outbox {

// Entries read (and applied) per step of a drain.
inline constexpr int kBatch = 100;
// How long outbox_journey remembers the last entry it applied per customer: an entry applied
// but not deleted for longer (a crash, and no drain since) would be counted again.
inline constexpr absl::Duration kAppliedKeptFor = absl::Hours(7 * 24);
// The deadline of the drain that follows an answer.
inline constexpr absl::Duration kDrainTimeout = absl::Seconds(10);

// After a write that left entries in the customer's outbox (or may have): marks the outbox
// pending, calls `marked` (OK, or the error when the mark could not be written: the caller
// answers with it, and a retry marks again), then drains in the background; a drain that
// fails is logged and left to the Sweeper.
void Settle(redis::Client* client, const std::string& tenant, const std::string& customer_id,
            absl::Time deadline, absl::AnyInvocable<void(absl::Status)> marked);

// For fault tests: asked with "outbox.drain" after Settle's mark is written and the caller
// answered, before the drain; true skips the drain, as a crash there would (the server's
// ONESTORY_FAILPOINT=outbox.drain exits the process). Set once at start-up, before any call.
void SetFailpoint(steps::Failpoint failpoint);

// Applies and deletes every entry of the customer's outbox, kBatch at a time; then, when `mark`
// is not 0, clears the customer's pending mark if it is still `mark`. `done` gets the number of
// entries applied, or the first error (entries not applied stay for the next drain). An entry
// of a kind this version does not know stops the drain with FAILED_PRECONDITION: a newer
// version wrote it, and applies it.
void Drain(redis::Client* client, const std::string& tenant, const std::string& customer_id,
           int64_t mark, absl::Time deadline, Callback<int64_t> done);

// Drain of each of `customer_ids` (mark 0: marks are left to their calls and the Sweeper), in
// parallel; `done` gets OK once all are drained, else the first error. For steps that move
// tenant-wide state a customer's entries name (a merge moving its cases' journey entries): the
// customers must be held, so no write adds entries meanwhile.
void DrainAll(redis::Client* client, const std::string& tenant,
              const std::vector<std::string>& customer_ids, absl::Time deadline,
              absl::AnyInvocable<void(absl::Status)> done);

}  // namespace onestory::outbox
