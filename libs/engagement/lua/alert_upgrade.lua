-- engagement_alert_upgrade: one alert of the layout before buckets (one alert log per tenant,
-- keys::TenantKeys(tenant)) moved into its customer's bucket, once: an id the bucket holds
-- already is left alone (UpgradeAlertKeys, libs/engagement/alert_upgrade.h, then deletes it from
-- the old keys). The entry keeps its stream id when the bucket's log holds only older ones (the
-- usual case: the buckets are empty when the old log is moved, oldest first), so cursors issued
-- before the upgrade still resume exactly; otherwise it gets a new one.
--
-- KEYS:
--   alert_log              the bucket's alert log stream
--   alert_ids              the bucket's alert id -> stream id hash
--   alert_open             the bucket's open alerts
--   alert_acks             the bucket's acknowledgements
-- ARGV:
--   alert_id               the alert
--   stream_id              its stream id in the old log (the old ids hash's value when only the
--                          id is left: its entry was trimmed)
--   open                   its score in the old open alerts, '' when not open
--   ack                    its acknowledgement JSON, '' for none
--   fields...              the old log entry's fields; none when only the id is left
-- Returns: 1 when moved, 0 when the bucket held it already.
-- Errors: none of its own.
local have = redis.call('HGET', K.alert_ids, P.alert_id)
if have and have ~= '-' then return 0 end
local sid = P.stream_id
if #P.fields > 0 then
  local function parse(id)
    local ms, seq = string.match(id, '^(%d+)-(%d+)$')
    return tonumber(ms) or 0, tonumber(seq) or 0
  end
  local id = sid
  local last = redis.call('XREVRANGE', K.alert_log, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local lm, ls = parse(last[1][1])
    local m, s = parse(sid)
    if lm > m or (lm == m and ls >= s) then id = '*' end
  end
  sid = redis.call('XADD', K.alert_log, 'MAXLEN', '~', 100000, id, unpack(P.fields))
end
redis.call('HSET', K.alert_ids, P.alert_id, sid)
if P.open ~= '' then redis.call('ZADD', K.alert_open, P.open, P.alert_id) end
if P.ack ~= '' then redis.call('HSET', K.alert_acks, P.alert_id, P.ack) end
return 1
