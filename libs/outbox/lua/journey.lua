-- outbox_journey: adds one customer's outbox counts (t=n, libs/outbox/lua/write.lua) to the
-- tenant's journey counters, each entry once: the sequence number of the last entry applied per
-- customer is kept (applied), and entries up to it are skipped, so a retry, a crash or two instances draining
-- the same outbox count nothing twice. Marks older than kept_ms are forgotten (a few per call).
--
-- KEYS:
--   journey_counters   the tenant's journey counters ("<stage>:<what>" -> n)
--   applied            customer id -> the sequence number of its last entry applied here
--   applied_at         customer id -> when it was applied (ms)
-- ARGV:
--   customer_id        the customer whose outbox the entries are from
--   now_ms:int         now, in ms
--   kept_ms:int        how long a customer's mark is kept
--   counts...          per count, in outbox order: its entry's sequence number (s), the
--                      counter's field
-- Returns: the number of counts added.
-- Errors: none.
local last = tonumber(redis.call('HGET', K.applied, P.customer_id) or '0')
local added = 0
for b = 1, #P.counts, 2 do
  local id = tonumber(P.counts[b])
  if id > last then
    redis.call('HINCRBY', K.journey_counters, P.counts[b + 1], 1)
    last = id
    added = added + 1
  end
end
if added > 0 then
  redis.call('HSET', K.applied, P.customer_id, last)
  redis.call('ZADD', K.applied_at, P.now_ms, P.customer_id)
end
local old = redis.call('ZRANGEBYSCORE', K.applied_at, '-inf', P.now_ms - P.kept_ms,
                       'LIMIT', 0, 16)
if #old > 0 then
  redis.call('HDEL', K.applied, unpack(old))
  redis.call('ZREM', K.applied_at, unpack(old))
end
return added
