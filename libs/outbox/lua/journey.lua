-- outbox_journey: adds one customer's outbox counts (t=n, libs/outbox/lua/write.lua) to the
-- tenant's journey counters, each entry once: the last entry applied per customer is kept
-- (applied), and entries up to it are skipped, so a retry, a crash or two instances draining
-- the same outbox count nothing twice. Marks older than kept_ms are forgotten (a few per call).
--
-- KEYS:
--   journey_counters   the tenant's journey counters ("<stage>:<what>" -> n)
--   applied            customer id -> the last of its outbox entries applied here
--   applied_at         customer id -> when it was applied (ms)
-- ARGV:
--   customer_id        the customer whose outbox the entries are from
--   now_ms:int         now, in ms
--   kept_ms:int        how long a customer's mark is kept
--   counts...          per count, in outbox order: its outbox entry id, the counter's field
-- Returns: the number of counts added.
-- Errors: none.
local last = redis.call('HGET', K.applied, P.customer_id)
local added = 0
for b = 1, #P.counts, 2 do
  local id = P.counts[b]
  if not last or os_id_less(last, id) then
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
