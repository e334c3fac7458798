-- privacy_redact_read: the event a redaction is about, as stored now, and the timeline's length.
--
-- KEYS:
--   profile        the customer's profile hash
--   dedup          its event id -> stream id hash
--   timeline       its timeline stream
-- ARGV:
--   customer_id    the customer
--   event_id       the event
-- Flags: no-writes
-- Returns: {stream id, the entry's fields, timeline length}.
-- Errors: os_guard's (OS_BUSY included); OS_NOT_FOUND "event_id: customer <id> has no event
--     <id>".
local err = os_guard(K.profile, P.customer_id, true)
if err then return err end
local sid = redis.call('HGET', K.dedup, P.event_id)
local x = {}
if sid then x = redis.call('XRANGE', K.timeline, sid, sid) end
if #x == 0 then
  return redis.error_reply('OS_NOT_FOUND event_id: customer ' .. P.customer_id ..
                           ' has no event ' .. P.event_id)
end
return {sid, x[1][2], redis.call('XLEN', K.timeline)}
