-- timeline_range: a page of a customer's timeline stream, for List, the watch loop (ReadAfter)
-- and Head. An exclusive start ("(<id>") from before a merge renumbered the timeline is remapped
-- first; so is "(<merged customer>|<id>)", a position in a customer merged into this one.
--
-- KEYS:
--   profile        the customer's profile hash
--   timeline       its timeline stream
--   remap          its old stream id -> new stream id hash (written by merges)
-- ARGV:
--   customer_id    the customer's id
--   order          'asc' (oldest first) or 'desc'
--   start          the first stream id: '-', '+', an id, or '(<id>' (exclusive)
--   count:int      at most this many entries
-- Flags: no-writes
-- Returns: the stream entries, as XRANGE / XREVRANGE.
-- Errors: os_guard's (OS_NOT_FOUND, OS_MOVED) for an unknown, erased or merged customer;
--   OS_INVALID after_cursor: for a position in a merged customer no longer known.
local err = os_guard(K.profile, P.customer_id, false)
if err then return err end
local start = P.start
if string.sub(start, 1, 1) == '(' then
  local now = redis.call('HGET', K.remap, string.sub(start, 2))
  if now then
    start = '(' .. now
  elseif string.find(start, '|', 1, true) then
    return redis.error_reply('OS_INVALID after_cursor: a position in a customer merged into ' ..
                             P.customer_id .. ' that is no longer known; watch from_start instead')
  end
end
if P.order == 'asc' then
  return redis.call('XRANGE', K.timeline, start, '+', 'COUNT', P.count)
end
return redis.call('XREVRANGE', K.timeline, start, '-', 'COUNT', P.count)
