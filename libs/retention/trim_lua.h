// os_trim: the Lua that removes a customer's oldest events for retention, shared by every
// append (it is the start of timeline::kEventEffectsLua) and by the Sweeper's script.
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

// The batch of count trimming (the Lua below spells it: 100).
inline constexpr int64_t kTrimSlack = 100;
// At most this many events removed by one append (os_append spells it: 200): a lowered limit is
// reached over several appends and Sweeper passes, so no append is slowed by a big trim.
inline constexpr int kTrimPerAppend = 200;

inline constexpr char kTrimLua[] = R"lua(
-- The event id of a stored event: field 1 (event_id) comes first in the serialized bytes.
local function os_blob_eid(blob)
  if string.byte(blob, 1) ~= 10 then return nil end
  local len, shift, i = 0, 1, 2
  while true do
    local b = string.byte(blob, i)
    if not b or i > 6 then return nil end
    len = len + (b % 128) * shift
    i = i + 1
    if b < 128 then break end
    shift = shift * 128
  end
  return string.sub(blob, i, i + len - 1)
end

-- When a timeline entry was stored: 'a' (the time before a merge renumbered it) or its id.
local function os_entry_ms(x)
  local f = x[2]
  for i = 1, #f, 2 do
    if f[i] == 'a' then return tonumber(f[i + 1]) end
  end
  return tonumber(string.match(x[1], '^(%d+)'))
end

-- See the top of libs/retention/trim_lua.h.
local function os_trim(tl, dd, now, max_age, max_events, limit)
  local want = 0
  if max_events > 0 then
    local n = redis.call('XLEN', tl)
    if n > max_events + math.min(100, math.floor(max_events / 100)) then
      want = math.min(n - max_events, limit)
    end
  end
  local cutoff = nil
  if max_age > 0 then cutoff = now - max_age end
  if want == 0 and not cutoff then return 0 end
  local ids = {}
  -- Without an age limit one read finds them all. With one, the entry after them is peeked at
  -- (the usual answer: it has not expired), then growing chunks are read while all expired.
  local fetch, start, grow = math.max(want, 1), '-', 1
  while true do
    local xs = redis.call('XRANGE', tl, start, '+', 'COUNT', fetch)
    local young = false
    for _, x in ipairs(xs) do
      if #ids >= limit or (#ids >= want and not (cutoff and os_entry_ms(x) < cutoff)) then
        young = true
        break
      end
      ids[#ids + 1] = x[1]
      local f = x[2]
      for i = 1, #f, 2 do
        if f[i] == 'e' then
          local eid = os_blob_eid(f[i + 1])
          if eid then redis.call('HDEL', dd, eid) end
        end
      end
    end
    if young or not cutoff or #xs < fetch or #ids >= limit then break end
    start = '(' .. xs[#xs][1]
    fetch = math.min(limit - #ids, grow)
    grow = math.min(grow * 2, 100)
  end
  if #ids > 0 then redis.call('XDEL', tl, unpack(ids)) end
  return #ids
end
)lua";

}  // namespace onestory::retention
