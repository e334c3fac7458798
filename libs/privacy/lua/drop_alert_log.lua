-- privacy_drop_alert_log: one bucket of the tenant's alert log rebuilt without the erased
-- customers' alerts (os_rebuild: a deleted stream entry would stay in memory), when it holds any,
-- and their ids forgotten.
--
-- KEYS:
--   alert_log      the tenant's alert log stream
--   rebuild        the log being rebuilt (keys::TenantKeys::alert_log_rebuild)
--   alert_ids      alert id -> stream id hash
--   alert_open     the unacknowledged ids zset
--   alert_acks     alert id -> ack hash
-- ARGV:
--   erased...      the erased customers
-- Returns: how many alerts went.
-- Errors: none of its own.
local erased = {}
for _, id in ipairs(P.erased) do erased[id] = true end
local function about(f)
  local c, id = nil, nil
  for j = 1, #f, 2 do
    if f[j] == 'c' then c = f[j + 1] elseif f[j] == 'id' then id = f[j + 1] end
  end
  return c and erased[c], id
end
local found, start = false, '-'
while not found do
  local batch = redis.call('XRANGE', K.alert_log, start, '+', 'COUNT', 1000)
  for _, e in ipairs(batch) do
    if about(e[2]) then found = true; break end
  end
  if #batch < 1000 then break end
  start = '(' .. batch[#batch][1]
end
if not found then return 0 end
local gone = {}
local n = os_rebuild(K.alert_log, K.rebuild, function(id, f)
  local hit, aid = about(f)
  if hit then
    if aid then gone[#gone + 1] = aid end
    return nil
  end
  return f
end)
for _, aid in ipairs(gone) do
  redis.call('HDEL', K.alert_ids, aid)
  redis.call('ZREM', K.alert_open, aid)
  redis.call('HDEL', K.alert_acks, aid)
end
return n
