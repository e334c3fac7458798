// Event effects: what storing an event does to the rest of the customer's state, shared by every
// function that appends (TimelineService.Append and the conversation and case operations of
// libs/engagement), so an event has the same effects whichever way it arrives.
//
// Storing an event (Lua function os_append of libs/timeline/lua/effects.lua, a helper of the
// Redis Function library (libs/lua) that timeline_append and the functions of
// libs/engagement/lua call):
// - writes it to the timeline stream and its event_id to the dedup hash (an id already there is
//   a duplicate: nothing is written);
// - updates the latest activity per channel and the open conversations;
// - a conversation seen for the first time is a new contact: counted by time and channel, and
//   matched to the case it is about (a repeat contact, see libs/engagement/README.md);
// - an event that ends a conversation ends its record;
// - sentiment is counted per day and feeds the negative streak;
// - raises REPEAT_CONTACT and NEGATIVE_STREAK alerts into the tenant's alert log (each once);
// - applies the tenant's retention limits (RetentionLimits; libs/retention/trim_lua.h: the oldest
//   events past max_events or max_age go) and records the customer's latest activity in the
//   tenant's activity index (keys::TenantKeys::activity(), which the retention Sweeper walks);
// - publishes the newest stream id on the customer's notify channel.
//
// A function binds `K` (named keys) and `P` (named arguments) for the helpers with
// os_effects (effects.lua's header names them), from its own keys and arguments, which callers
// fill by name (libs/timeline/timeline_store.cc, engagement::SetEffects).
//
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

// Arguments per event written by AppendEventArgs (effects.lua's os_event_fields).
inline constexpr int kArgsPerEvent = 8;

// The tenant's retention limits: policy.retention's (Policy::For: a reader lock), else
// retention::DefaultLimits().
retention::Limits RetentionLimits(absl::string_view tenant, const EngagementPolicy& policy);

// Appends kArgsPerEvent arguments describing `event` (validated, with event_id and occurred_at)
// as it will be stored, for timeline_append's events list (engagement::SetEvent sets the same
// values by name). Its free text must be masked already: the event is taken from, or built from,
// a request masked once by privacy::MaskedForStorage (a second Mask is not a no-op).
void AppendEventArgs(const v1::Event& event, std::vector<std::string>* args);

}  // namespace onestory::timeline
