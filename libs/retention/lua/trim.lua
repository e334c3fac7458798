-- os_trim (helper): removes a customer's oldest events for retention. Every append runs it
-- (os_append, libs/timeline/lua/effects.lua, calls it) and so does retention_sweep.
--
--   local removed = os_trim(timeline_key, dedup_key, now_ms, max_age_ms, max_events, limit)
--
-- Removes from the head of the timeline stream the events past max_events and those stored
-- before now - max_age_ms (0: no such limit), at most `limit` in one call, deletes their event
-- ids from the dedup hash, and returns how many it removed. The rules (batches of slack, an
-- event's age after a merge) are told at the top of libs/retention/trim_lua.h.

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
