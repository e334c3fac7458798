// RunCustomerScript: the common path of every engagement operation on one customer. Resolves
// the customer (by id or identifier, creating it when asked), calls one function of the Redis
// Function library (libs/engagement/lua/*.lua) with the keys and arguments of the event effects
// filled for that customer (SetEffects), and follows merges: a merged customer is retried on its
// target, with the merge chain as the event's tag, as TimelineService.Append does.
//
//   lua::EngagementCaseGet call;
//   call.case_id = id;
//   RunCustomerScript(ctx, tenant, request.customer(), false, std::move(call), now, deadline,
//                     [](absl::StatusOr<ScriptResult> r) { ... r->customer_id, r->reply ... });
//
// Thread-safe. The callback runs on the Redis loop thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/common/time_util.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/outbox/outbox.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"
#include "libs/timeline/event_effects.h"
#include "onestory/v1/common.pb.h"

namespace onestory::engagement {

// What every store of this library needs.
struct StoreContext {
  redis::Client* client;
  identity::IdentityStore* identity;
  timeline::EngagementPolicy policy;
  // The masking of every request's free text before it is stored (privacy::MaskedForStorage:
  // null masks card numbers only). Not owned; must outlive the stores.
  const privacy::Redactor* redactor = nullptr;
};

struct ScriptResult {
  std::string customer_id;  // the customer the function ran for (a merge target when followed)
  int64_t now_ms = 0;       // the time the function was given
  redis::Reply reply;
};

// Checks a request against what a customer created now would have (no cases, the tenant's
// journey), before it is created: a request refused then creates nothing.
using BeforeCreate = absl::AnyInvocable<void(Callback<bool>)>;

// Fills the keys and arguments of the event effects that the generated call `Call` declares
// (their names are listed in libs/engagement/lua/case.lua), by name, for `customer_id` of
// `tenant`: a function declares only the ones it uses. `tag`: the merge chain the call was
// redirected through; `via`: the identifiers-hash field the customer was named by.
template <typename Call>
void SetEffects(absl::string_view tenant, absl::string_view customer_id, int64_t now_ms,
                absl::string_view tag, absl::string_view via,
                const timeline::EngagementPolicy& policy, Call* call) {
  const keys::CustomerKeys ck(tenant, customer_id);
  const keys::TenantKeys tk(tenant);
  Call& c = *call;
  if constexpr (requires(Call & x) { x.profile; }) c.profile = ck.profile();
  if constexpr (requires(Call & x) { x.timeline; }) c.timeline = ck.timeline();
  if constexpr (requires(Call & x) { x.dedup; }) c.dedup = ck.dedup();
  if constexpr (requires(Call & x) { x.conversations; }) c.conversations = ck.conversations();
  if constexpr (requires(Call & x) { x.identifiers; }) c.identifiers = ck.identifiers();
  if constexpr (requires(Call & x) { x.conversation_records; }) {
    c.conversation_records = ck.conversation_records();
  }
  if constexpr (requires(Call & x) { x.cases; }) c.cases = ck.cases();
  if constexpr (requires(Call & x) { x.facts; }) c.facts = ck.facts();
  if constexpr (requires(Call & x) { x.contacts; }) c.contacts = ck.contacts();
  if constexpr (requires(Call & x) { x.contact_channels; }) {
    c.contact_channels = ck.contact_channels();
  }
  if constexpr (requires(Call & x) { x.signals; }) c.signals = ck.signals();
  if constexpr (requires(Call & x) { x.outbox; }) c.outbox = ck.outbox();
  if constexpr (requires(Call & x) { x.journey_stages; }) c.journey_stages = tk.journey_stages();
  c.customer_id = std::string(customer_id);
  if constexpr (requires(Call & x) { x.now_ms; }) c.now_ms = now_ms;
  if constexpr (requires(Call & x) { x.notify_channel; }) c.notify_channel = ck.channel();
  if constexpr (requires(Call & x) { x.tag; }) c.tag = std::string(tag);
  if constexpr (requires(Call & x) { x.via; }) c.via = std::string(via);
  if constexpr (requires(Call & x) { x.repeat_window_ms; }) {
    c.repeat_window_ms = absl::ToInt64Milliseconds(policy.repeat_window);
  }
  if constexpr (requires(Call & x) { x.alert_repeat_contacts; }) {
    c.alert_repeat_contacts = policy.alert_repeat_contacts;
  }
  if constexpr (requires(Call & x) { x.alert_negative_streak; }) {
    c.alert_negative_streak = policy.alert_negative_streak;
  }
  if constexpr (requires(Call & x) { x.max_events; }) {
    const retention::Limits limits = timeline::RetentionLimits(tenant, policy);
    c.max_events = limits.max_events;
    c.max_age_ms = absl::ToInt64Milliseconds(limits.max_age);
  }
}

// Sets the call's event arguments (ev_*, os_event_named in libs/engagement/lua/case.lua) to
// `event` as it will be stored, as timeline::AppendEventArgs does for timeline_append (its free
// text masked already).
template <typename Call>
void SetEvent(const v1::Event& event, Call* call) {
  call->ev_id = event.event_id();
  call->ev_blob = event.SerializeAsString();
  call->ev_channel = static_cast<int>(event.channel());
  call->ev_kind = static_cast<int>(event.kind());
  call->ev_occurred_ms = ToMillis(event.occurred_at());
  call->ev_conversation = event.conversation_id();
  call->ev_sentiment = event.has_sentiment() ? absl::StrCat(event.sentiment()) : std::string();
  call->ev_case = event.case_id();
}

// Calls the function for one customer: (customer id, merge tag, via, reply callback).
using CustomerCall = std::function<void(const std::string& customer_id, const std::string& tag,
                                        const std::string& via, redis::ReplyCallback cb)>;

// Resolves `ref` and runs `call` for the customer, following merges. With create_if_missing, a
// customer is created only when the identifier has no owner and `before_create` (when given)
// passes.
void RunCustomerCall(const StoreContext& ctx, const std::string& tenant, const v1::CustomerRef& ref,
                     bool create_if_missing, CustomerCall call, int64_t now_ms, absl::Time deadline,
                     Callback<ScriptResult> done, BeforeCreate before_create = nullptr);

// Calls the generated function call `call` (its own keys and arguments set) for the customer
// `ref` names, with SetEffects filled for each customer it is tried on.
template <typename Call>
void RunCustomerScript(const StoreContext& ctx, const std::string& tenant,
                       const v1::CustomerRef& ref, bool create_if_missing, Call call,
                       int64_t now_ms, absl::Time deadline, Callback<ScriptResult> done,
                       BeforeCreate before_create = nullptr) {
  auto shared = std::make_shared<const Call>(std::move(call));
  redis::Client* client = ctx.client;
  const timeline::EngagementPolicy policy = ctx.policy;
  RunCustomerCall(
      ctx, tenant, ref, create_if_missing,
      [client, policy, tenant, shared, now_ms, deadline](
          const std::string& customer_id, const std::string& tag, const std::string& via,
          redis::ReplyCallback cb) {
        Call c = *shared;
        SetEffects(tenant, customer_id, now_ms, tag, via, policy, &c);
        if constexpr (requires(Call & x) { x.outbox; }) {
          // The function may have left effects in the customer's outbox (libs/outbox): the
          // answer waits for the mark that makes sure they are applied.
          client->Fcall(c, deadline,
                        [client, tenant, customer_id, deadline,
                         cb = std::move(cb)](absl::StatusOr<redis::Reply> r) mutable {
                          if (!r.ok()) return cb(std::move(r));
                          outbox::Settle(
                              client, tenant, customer_id, deadline,
                              [r = *std::move(r), cb = std::move(cb)](absl::Status st) mutable {
                                if (!st.ok()) return cb(st);
                                cb(std::move(r));
                              });
                        });
        } else {
          client->Fcall(c, deadline, std::move(cb));
        }
      },
      now_ms, deadline, std::move(done), std::move(before_create));
}

}  // namespace onestory::engagement
