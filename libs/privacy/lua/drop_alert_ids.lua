-- privacy_drop_alert_ids: one HSCAN page of one bucket of the tenant's alert ids: those naming
-- an erased customer ("<kind>:<customer>:...") are forgotten, those of alerts already trimmed
-- from the log included.
--
-- KEYS:
--   alert_ids      alert id -> stream id hash
--   alert_open     the unacknowledged ids zset
--   alert_acks     alert id -> ack hash
-- ARGV:
--   cursor         the HSCAN cursor ('0' first)
--   erased...      the erased customers
-- Returns: {next cursor ('0' at the end), ids forgotten}.
-- Errors: none of its own.
local erased = {}
for _, id in ipairs(P.erased) do erased[id] = true end
local r = redis.call('HSCAN', K.alert_ids, P.cursor, 'COUNT', 1000)
local n = 0
for i = 1, #r[2], 2 do
  local id = r[2][i]
  local c = string.match(id, '^[^:]*:([^:]*):')
  if c and erased[c] then
    redis.call('HDEL', K.alert_ids, id)
    redis.call('ZREM', K.alert_open, id)
    redis.call('HDEL', K.alert_acks, id)
    n = n + 1
  end
end
return {r[1], n}
