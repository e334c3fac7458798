-- engagement_alert_ack: AlertService.AckAlert: acknowledges an alert once (a second ack keeps
-- the first one's actor and time) and takes it off the open alerts.
--
-- KEYS:
--   alert_ids              the tenant's alert id -> stream id hash
--   alert_open             the tenant's open alerts
--   alert_acks             the tenant's acknowledgements
--   alert_log              the tenant's alert log stream
-- ARGV:
--   alert_id               the alert
--   actor_type:int         who acknowledges it
--   actor_id               its id
--   now_ms:int             now, in ms
-- Returns: {stream id, the alert's fields, the ack JSON (case.lua)}.
-- Errors: OS_NOT_FOUND alert_id.
local sid = redis.call('HGET', K.alert_ids, P.alert_id)
if not sid or sid == '-' then
  return redis.error_reply('OS_NOT_FOUND alert_id: no alert ' .. P.alert_id)
end
local a = redis.call('HGET', K.alert_acks, P.alert_id)
if not a then
  a = cjson.encode({bt = P.actor_type, bi = P.actor_id, at = P.now_ms})
  redis.call('HSET', K.alert_acks, P.alert_id, a)
  redis.call('ZREM', K.alert_open, P.alert_id)
end
local e = redis.call('XRANGE', K.alert_log, sid, sid)
local fields = {'id', P.alert_id}
if #e > 0 then fields = e[1][2] end
return {sid, fields, a}
