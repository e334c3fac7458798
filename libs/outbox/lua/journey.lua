-- outbox_journey: applies one customer's journey entries (t=n, jo, jl, jr: libs/outbox/lua/
-- write.lua) to the tenant's journey keys, in outbox order, each entry once: the sequence
-- number of the last entry applied per customer is kept (applied), and entries up to it are
-- skipped, so a retry, a crash or two instances draining the same outbox change nothing twice.
-- Marks older than kept_ms are forgotten (a few per call).
--
-- KEYS:
--   journey_counters   the tenant's journey counters ("<stage>:<what>" -> n)
--   journey_open       the tenant's open-case index (libs/engagement/lua/journey.lua)
--   journey_stays      the tenant's completed stays (a ring per stage, journey.lua)
--   applied            customer id -> the sequence number of its last entry applied here
--   applied_at         customer id -> when it was applied (ms)
-- ARGV:
--   customer_id        the customer whose outbox the entries are from
--   now_ms:int         now, in ms
--   kept_ms:int        how long a customer's mark is kept
--   entries...         per entry, in outbox order, 5 values: its sequence number (s), its kind
--                      (t), then n: the counter's field, '', ''; jo: the member, '', '';
--                      jl: the member, the stage, the stay in ms; jr: the member, '', ''
-- Returns: the number of entries applied.
-- Errors: none.
local last = os_applied_last(K.applied, P.customer_id)
local applied = 0
for b = 1, #P.entries, 5 do
  local seq, kind = tonumber(P.entries[b]), P.entries[b + 1]
  local x, y, z = P.entries[b + 2], P.entries[b + 3], P.entries[b + 4]
  if seq > last then
    if kind == 'n' then
      redis.call('HINCRBY', K.journey_counters, x, 1)
    elseif kind == 'jo' then
      redis.call('ZADD', K.journey_open, 0, x)
    elseif kind == 'jl' then
      redis.call('ZREM', K.journey_open, x)
      local n = redis.call('HINCRBY', K.journey_stays, y .. ':n', 1)
      redis.call('HSET', K.journey_stays, y .. ':' .. ((n - 1) % os_journey_stays_kept), z)
    elseif kind == 'jr' then
      redis.call('ZREM', K.journey_open, x)
    end
    last = seq
    applied = applied + 1
  end
end
os_applied_save(K.applied, K.applied_at, P.customer_id, last, applied, P.now_ms, P.kept_ms)
return applied
