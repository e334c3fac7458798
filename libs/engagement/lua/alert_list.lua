-- engagement_alert_list: AlertService.ListAlerts: a page of the tenant's alerts, newest first,
-- examining at most max_examined per call (a page may come back short, with a token to go on).
--
-- KEYS:
--   alert_log              the tenant's alert log stream
--   alert_open             the tenant's open (unacknowledged) alerts
--   alert_acks             the tenant's acknowledgements
-- ARGV:
--   all:int                1: acknowledged alerts too
--   page_size:int          alerts per page
--   start                  where to start: '+' or '(<stream id>'
--   batch:int              entries read per XREVRANGE (kAlertListBatch)
--   max_examined:int       entries examined at most (the bucket's share of
--                          kAlertListMaxExamined)
-- Flags: no-writes
-- Returns: {more (0|1), the last stream id examined, {{stream id, fields, ack JSON or ''}...}}.
-- Errors: none.
local out, ids, examined, last, more = {}, {}, 0, '', 0
local start = P.start
while more == 0 do
  local batch = redis.call('XREVRANGE', K.alert_log, start, '-', 'COUNT', P.batch)
  -- Open or not, the whole batch in one command.
  local open
  if P.all ~= 1 and #batch > 0 then
    local batch_ids = {}
    for i, e in ipairs(batch) do batch_ids[i] = e[2][2] end
    open = redis.call('ZMSCORE', K.alert_open, unpack(batch_ids))
  end
  for i, e in ipairs(batch) do
    if #out >= P.page_size or examined >= P.max_examined then more = 1; break end
    examined = examined + 1
    last = e[1]
    if P.all == 1 or open[i] then
      out[#out + 1] = {e[1], e[2], ''}
      ids[#ids + 1] = e[2][2]
    end
  end
  if #batch < P.batch then break end
  start = '(' .. batch[#batch][1]
end
-- The acknowledgements of the listed alerts, in one command.
if #ids > 0 then
  local acks = redis.call('HMGET', K.alert_acks, unpack(ids))
  for i = 1, #out do out[i][3] = acks[i] or '' end
end
return {more, last, out}
