-- outbox_alerts: raises the alerts of one customer's outbox entries (t=a, libs/outbox/lua/
-- write.lua) in the customer's bucket of the tenant's alert keys (keys::TenantBucket): each
-- alert id once, whoever applies it and however often (an id the log already holds is
-- ignored). Each bucket's log keeps about its newest 100,000 alerts.
--
-- KEYS:
--   alert_log          the bucket's alert log stream
--   alert_ids          the bucket's alert id -> stream id hash
--   alert_open         the bucket's open alerts
--   alert_channel      the bucket's alert channel, a shard channel (the new entry's stream id
--                      is published with SPUBLISH)
-- ARGV:
--   customer_id        the customer whose outbox the entries are from
--   alerts...          per alert: id, kind (AlertKind number), case id, message, raised at ms
-- Returns: the number of alerts raised (not held by the log before).
-- Errors: none.
local raised = 0
for b = 1, #P.alerts, 5 do
  local id = P.alerts[b]
  if redis.call('HSETNX', K.alert_ids, id, '-') == 1 then
    local sid = redis.call('XADD', K.alert_log, 'MAXLEN', '~', 100000, '*', 'id', id,
                           'k', P.alerts[b + 1], 'c', P.customer_id, 'ca', P.alerts[b + 2],
                           'msg', P.alerts[b + 3], 'at', P.alerts[b + 4])
    redis.call('HSET', K.alert_ids, id, sid)
    redis.call('ZADD', K.alert_open, P.alerts[b + 4], id)
    redis.call('SPUBLISH', K.alert_channel, sid)
    raised = raised + 1
  end
end
return raised
