-- engagement_alert_read: AlertService.WatchAlerts' reads: the tenant's alerts after a stream id,
-- oldest first.
--
-- KEYS:
--   alert_log              the tenant's alert log stream
--   alert_acks             the tenant's acknowledgements
-- ARGV:
--   after                  a stream id (exclusive)
--   count:int              at most this many
-- Flags: no-writes
-- Returns: {{stream id, fields, ack JSON or ''}...}.
-- Errors: none.
local out = {}
for _, e in ipairs(redis.call('XRANGE', K.alert_log, '(' .. P.after, '+', 'COUNT', P.count)) do
  out[#out + 1] = {e[1], e[2], redis.call('HGET', K.alert_acks, e[2][2]) or ''}
end
return out
