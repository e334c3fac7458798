-- engagement_case_open: CaseService.OpenCase, once the customer is resolved: a new open case
-- in the given stage (else the journey's first), its CASE_OPENED event with every effect
-- (os_append), and its entry in the tenant's journey (os_journey_enter); or the case as
-- stored when it is open already (a retry).
--
-- KEYS:
--   profile               the customer's profile hash
--   timeline              its timeline stream
--   dedup                 its event_id -> stream id hash
--   conversations         its open conversations
--   identifiers           its identifiers hash (the via field's merge chain)
--   conversation_records  its conversation records
--   cases                 its cases
--   contacts              its contacts by time (30 days)
--   contact_channels      its latest contact per channel
--   signals               its sentiment counts, negative streak and repeat flag
--   outbox                its outbox: alerts, journey counters, activity (libs/outbox)
--   notify_channel        the customer's notify channel (what is published: timeline::PublishedEntry)
-- ARGV:
--   stages                the tenant's journey stages, one per line ('' when it has none)
--   customer_id           the customer's id
--   now_ms:int            now, in ms
--   tag                   the merge chain the call was redirected through ('' when none)
--   via                   the identifiers-hash field the customer was named by ('' by id)
--   repeat_window_ms:int  a contact this long after a case was resolved still repeats it
--   alert_repeat_contacts:int
--                         REPEAT_CONTACT is raised on this many contacts in 7 days
--   alert_negative_streak:int
--                         NEGATIVE_STREAK is raised at this many negative events in a row
--   max_events:int        the tenant's retention limit on events (0: none)
--   max_age_ms:int        the tenant's retention limit on age, in ms (0: none)
--   case_id               the case to open
--   topic                 what it is about
--   stage                 its stage ('': the journey's first, none without a journey)
--   owner_type:int        its first owner (0: none)
--   owner_id              its id
--   conversation_id       the conversation it is opened in ('' none), whose record gets the case
--                         when it names none
--   actor_type:int        who opens it
--   actor_id              its id
--   max_open_cases:int    open cases a customer may have (kMaxOpenCasesPerCustomer)
--   forget_resolved_ms:int
--                         cases resolved longer ago than this are forgotten
--                         (kResolvedCaseKeepMs)...
--   forget_over_cases:int ...when the customer has more than this many cases
--                         (kCasesBeforeForget)
--   ev_id                 the event's event_id (a retry's key)
--   ev_blob               the serialized v1.Event
--   ev_channel:int        its channel
--   ev_kind:int           its kind
--   ev_occurred_ms:int    its occurred_at, in ms
--   ev_conversation       its conversation_id ('' none)
--   ev_sentiment          its sentiment ('' none)
--   ev_case               its case_id ('' none)
-- Returns: {already (0|1), the case record (case.lua), stream id ('' when already open),
--     ''}.
-- Errors: os_guard's; OS_CONFLICT case_id (resolved: a new case needs another id);
--     OS_CONFLICT / OS_INVALID stage (os_check_stage); OS_LIMIT case_id (max_open_cases
--     open already); os_append's (consent withdrawn).
local E, ev, err = os_engagement_begin(K, P)
if err then return err end
local id, stage, conv = P.case_id, P.stage, P.conversation_id
local rec = redis.call('HGET', K.cases, id)
if rec then
  if cjson.decode(rec).s ~= 'o' then
    return redis.error_reply('OS_CONFLICT case_id: case ' .. id ..
                             ' is resolved; open a new case with another id')
  end
  return os_done_before(ev.eid, rec) or {1, rec, '', ''}
end
if stage ~= '' then
  local serr = os_check_stage(stage)
  if serr then return serr end
else
  local j = os_journey_stages()
  if j then stage = j[1] end
end
local open = 0
local all = redis.call('HGETALL', K.cases)
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).s == 'o' then open = open + 1 end
end
if open >= P.max_open_cases then
  return redis.error_reply('OS_LIMIT case_id: customer ' .. P.customer_id .. ' has ' ..
                           P.max_open_cases .. ' open cases; resolve some first')
end
local out, e2 = os_append({ev})
if not out then return e2 end
local c = {tp = P.topic, sg = '', s = 'o', ot = P.owner_type, oi = P.owner_id, op = E.now,
           se = E.now, up = E.now, rs = 0, rn = '', pt = '', pb = 0, pm = 0, mt = 0, mi = '',
           nc = 1, rc = 0, sw = 0, lc = ev.ch, rct = {ev.occ}, oh = {}, ohn = 0, ln = ''}
if c.ot ~= 0 then
  c.oh = {{ft = 0, fi = '', tt = c.ot, ti = c.oi, r = 'first owner', bt = P.actor_type,
           bi = P.actor_id, at = E.now}}
  c.ohn = 1
end
os_journey_enter(id, c, stage)
rec = cjson.encode(c)
redis.call('HSET', K.cases, id, rec)
if conv ~= '' then
  local r = redis.call('HGET', K.conversation_records, conv)
  if r then
    r = cjson.decode(r)
    if r.ca == '' then
      r.ca = id
      redis.call('HSET', K.conversation_records, conv, cjson.encode(r))
    end
  end
end
-- Forget long-resolved cases, when the list grows long.
if #all > 2 * P.forget_over_cases then
  for i = 1, #all, 2 do
    local x = cjson.decode(all[i + 1])
    if x.s ~= 'o' and x.rs < E.now - P.forget_resolved_ms then redis.call('HDEL', K.cases, all[i]) end
  end
end
return {0, rec, out[1], ''}
