// os_trim: the Lua that removes a customer's oldest events for retention, shared by every
// append (os_append of libs/timeline/lua/effects.lua calls it) and by the Sweeper's function
// (libs/retention/lua/sweep.lua). Its source is libs/retention/lua/trim.lua.
//
//   local removed = os_trim(K.tl, K.dd, P.now, max_age_ms, max_events, limit)
//
// Removes from the head of timeline stream `tl` the events past `max_events` and those stored
// before now - max_age_ms (0: no such limit), at most `limit` in one call, deletes their event
// ids from dedup hash `dd` (so the hash does not outgrow the timeline), and returns how many it
// removed. An event's age is when it was stored: its stream id, or the time a merge kept in the
// entry's 'a' field (a merge renumbers the entries it moves). The walk from the head stops at
// the first event that may stay, so in a timeline a merge interleaved (not in order of storing)
// an expired event can wait behind a younger one.
//
// Events past max_events are removed in batches: once a timeline holds more than max_events +
// slack, where slack = min(kTrimSlack, max_events / 100), it is cut to exactly max_events. So a
// timeline never holds more than max_events + slack (exactly max_events when max_events < 200),
// and finding each removed event's id (for the dedup hash) is paid once per batch, not on every
// append. Thread-safe (constant).
#pragma once

#include <cstdint>

namespace onestory::retention {

// The batch of count trimming (trim.lua spells it: 100).
inline constexpr int64_t kTrimSlack = 100;
// At most this many events removed by one append (os_append spells it: 200): a lowered limit is
// reached over several appends and Sweeper passes, so no append is slowed by a big trim.
inline constexpr int kTrimPerAppend = 200;

}  // namespace onestory::retention
