// RunCustomerScript: the common path of every engagement operation on one customer. Resolves
// the customer (by id or identifier, creating it when asked), runs an effects script (see
// libs/timeline/event_effects.h) with the operation's own arguments, and follows merges: a
// merged customer is retried on its target, with the merge chain as the event's tag, as
// TimelineService.Append does.
//
//   RunCustomerScript(ctx, tenant, request.customer(), false, kScript, std::move(args), deadline,
//                     [](absl::StatusOr<ScriptResult> r) { ... r->customer_id, r->reply ... });
//
// Thread-safe. The callback runs on the Redis loop thread.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/identity/identity_store.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"
#include "libs/redis/script.h"
#include "libs/timeline/event_effects.h"
#include "onestory/v1/common.pb.h"

namespace onestory::engagement {

// Lua every engagement script adds after kGuardLua and timeline::kEventEffectsLua: helpers the
// append path does not need (kept out of it, since Redis re-creates a script's functions on every
// call): protobuf field encoding (os_pb_int, os_pb_str), a case's moves between journey stages
// (os_stage_leave, os_stage_enter) and the answer to a retry (os_done_before).
extern const char kEngagementLua[];

// What every store of this library needs.
struct StoreContext {
  redis::Client* client;
  identity::IdentityStore* identity;
  timeline::EngagementPolicy policy;
};

struct ScriptResult {
  std::string customer_id;  // the customer the script ran for (a merge target when followed)
  int64_t now_ms = 0;       // the time the script was given
  redis::Reply reply;
};

// Checks a request against what a customer created now would have (no cases, the tenant's
// journey), before it is created: a request refused then creates nothing.
using BeforeCreate = absl::AnyInvocable<void(Callback<bool>)>;

// Runs `script` with KEYS = EffectKeys, ARGV = EffectArgs followed by `args`. With
// create_if_missing, a customer is created only when the identifier has no owner and
// `before_create` (when given) passes.
void RunCustomerScript(const StoreContext& ctx, const std::string& tenant,
                       const v1::CustomerRef& ref, bool create_if_missing,
                       const redis::Script& script, std::vector<std::string> args, int64_t now_ms,
                       absl::Time deadline, Callback<ScriptResult> done,
                       BeforeCreate before_create = nullptr);

}  // namespace onestory::engagement
