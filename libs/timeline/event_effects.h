// Event effects: what storing an event does to the rest of the customer's state, shared by every
// script that appends (TimelineService.Append and the conversation and case operations of
// libs/engagement), so an event has the same effects whichever way it arrives.
//
// Storing an event (Lua function os_append of libs/timeline/lua/effects.lua, a helper of the
// Redis Function library (libs/lua) that timeline_append calls, and pasted into the EVAL
// scripts of libs/engagement through kEventEffectsLua):
// - writes it to the timeline stream and its event_id to the dedup hash (an id already there is
//   a duplicate: nothing is written);
// - updates the latest activity per channel and the open conversations;
// - a conversation seen for the first time is a new contact: counted by time and channel, and
//   matched to the case it is about (a repeat contact, see libs/engagement/README.md);
// - an event that ends a conversation ends its record;
// - sentiment is counted per day and feeds the negative streak;
// - raises REPEAT_CONTACT and NEGATIVE_STREAK alerts into the tenant's alert log (each once);
// - applies the tenant's retention limits (RetentionLimits; libs/retention/trim_lua.h: the oldest
// events past
//   max_events or max_age go) and records the customer's latest activity in the tenant's
//   activity index (keys::TenantKeys::activity(), which the retention Sweeper walks);
// - publishes the newest stream id on the customer's notify channel.
//
// An EVAL script is kGuardLua + kEventEffectsLua + its own body, called with EffectKeys() as KEYS
// and EffectArgs() as the first kEffectArgs ARGV. The prelude binds `K` (named keys) and `P`
// (named arguments) for the body (effects.lua's header names them). The function
// timeline_append (libs/timeline/lua/append.lua) takes its keys and arguments by name instead.
// Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/privacy/free_text.h"
#include "libs/privacy/redactor.h"
#include "libs/retention/retention.h"
#include "onestory/v1/common.pb.h"

namespace onestory::timeline {

// The server's rules for repeat contacts and proactive alerts (flags in
// services/server/server_runner.cc).
struct EngagementPolicy {
  // A contact within this long after a case was resolved still counts as a repeat contact
  // about it ("contacting again about <topic>").
  absl::Duration repeat_window = absl::Hours(7 * 24);
  // ALERT_KIND_REPEAT_CONTACT is raised on the Nth contact about one case within 7 days.
  int alert_repeat_contacts = 3;
  // ALERT_KIND_NEGATIVE_STREAK is raised after this many negative interactions in a row.
  int alert_negative_streak = 3;
  // How often each instance looks for promises that became overdue.
  absl::Duration promise_scan_interval = absl::Seconds(1);
  // Retention limits per tenant (--retention_file), applied by every append. Null:
  // retention::DefaultLimits() for every tenant. Not owned; must outlive the stores.
  const retention::Policy* retention = nullptr;
};

// Lua prelude of the EVAL scripts (after kGuardLua): retention's os_trim, effects.lua (os_append
// and what it needs: contacts, cases, sentiment, alerts), K and P bound from KEYS and ARGV, and
// os_event_arg(b) (an event's arguments from ARGV[b]); libs/engagement adds its other helpers
// after it (kEngagementLua).
extern const char* const kEventEffectsLua;

// How many ARGV EffectArgs fills; a script's own arguments start at ARGV[kEffectArgs + 1].
inline constexpr int kEffectArgs = 12;
// Arguments per event written by AppendEventArgs (effects.lua's os_event_fields).
inline constexpr int kArgsPerEvent = 8;

// KEYS of every effects script, for one customer of one tenant (both validated).
std::vector<std::string> EffectKeys(absl::string_view tenant, absl::string_view customer_id);

// The first kEffectArgs ARGV. `tag`: the merge chain an append was redirected through (empty
// when none); `via`: the identifiers-hash field the customer was named by (empty when by id).
// The tenant's retention limits come from policy.retention (Policy::For: a reader lock).
std::vector<std::string> EffectArgs(absl::string_view tenant, absl::string_view customer_id,
                                    int64_t now_ms, absl::string_view tag, absl::string_view via,
                                    const EngagementPolicy& policy);

// The tenant's retention limits: policy.retention's (Policy::For: a reader lock), else
// retention::DefaultLimits().
retention::Limits RetentionLimits(absl::string_view tenant, const EngagementPolicy& policy);

// The masking everything stored passes through: privacy::SetStorageRedactor and
// privacy::StorageRedactor (libs/privacy/free_text.h), named here for the servers that set it.
void SetStorageRedactor(const privacy::Redactor* redactor);
const privacy::Redactor& StorageRedactor();

// Appends kArgsPerEvent ARGV describing `event` (validated, with event_id and occurred_at), as
// it will be stored. Its free text must be masked already: the event is taken from, or built
// from, a request masked once by privacy::MaskedForStorage (a second Mask is not a no-op).
void AppendEventArgs(const v1::Event& event, std::vector<std::string>* args);

}  // namespace onestory::timeline
