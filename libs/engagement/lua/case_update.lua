-- engagement_case_update: CaseService.UpdateCase, once the customer is resolved: moves an open
-- case to another stage (os_journey_leave, os_journey_enter), reassigns it (kept in its owner
-- history with the reason), records a promise (indexed by its due time for
-- engagement_alert_promise) or a note; with its CASE_UPDATE event and every effect. A retry
-- (same event id) answers as the first call did.
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
--   case_id               the case
--   stage                 its new stage ('' unchanged)
--   owner_type:int        its new owner (0: unchanged)
--   owner_id              its id
--   reason                why it is reassigned (required to take it from another owner)
--   promise               what was promised
--   promised_by_ms:int    by when (0: no promise)
--   note                  a note ('' none)
--   note_visibility:int   the note's Audience
--   actor_type:int        who updates it
--   actor_id              its id
--   tenant                the tenant (the due-promise index's member)
--   max_owner_history:int owner changes kept (kMaxOwnerHistory)
--   ev_id                 the event's event_id (a retry's key)
--   ev_blob               the serialized v1.Event
--   ev_channel:int        its channel
--   ev_kind:int           its kind
--   ev_occurred_ms:int    its occurred_at, in ms
--   ev_conversation       its conversation_id ('' none)
--   ev_sentiment          its sentiment ('' none)
--   ev_case               its case_id ('' none)
-- Returns: {duplicate (0|1), the case record (case.lua), stream id, stored blob if duplicate}.
-- Errors: os_guard's; OS_NOT_FOUND case_id; OS_CONFLICT case_id (resolved); OS_CONFLICT /
--     OS_INVALID stage; OS_INVALID reassign_reason; os_append's.
local E, ev, err = os_engagement_begin(K, P)
if err then return err end
local id, stage, owner_t, owner_i = P.case_id, P.stage, P.owner_type, P.owner_id
local reason, pb = P.reason, P.promised_by_ms
local rec = redis.call('HGET', K.cases, id)
local again = os_done_before(ev.eid, rec)
if again then return again end
if not rec then return os_no_case(id) end
local c = cjson.decode(rec)
if c.s ~= 'o' then
  return redis.error_reply('OS_CONFLICT case_id: case ' .. id .. ' is resolved')
end
if stage ~= '' then
  local serr = os_check_stage(stage)
  if serr then return serr end
end
if owner_t ~= 0 and c.ot ~= 0 and reason == '' and (c.ot ~= owner_t or c.oi ~= owner_i) then
  return redis.error_reply('OS_INVALID reassign_reason: required to reassign case ' .. id ..
                           ' from ' .. c.ot .. ':' .. c.oi)
end
local out, e2 = os_append({ev})
if not out then return e2 end
c = cjson.decode(redis.call('HGET', K.cases, id))
if stage ~= '' and stage ~= c.sg then
  os_journey_leave(id, c)
  os_journey_enter(id, c, stage)
end
if owner_t ~= 0 and (c.ot ~= owner_t or c.oi ~= owner_i) then
  local oh = c.oh
  if oh[1] == nil then oh = {} end
  oh[#oh + 1] = {ft = c.ot, fi = c.oi, tt = owner_t, ti = owner_i, r = reason,
                 bt = P.actor_type, bi = P.actor_id, at = E.now}
  while #oh > P.max_owner_history do table.remove(oh, 1) end
  c.oh = oh
  c.ohn = c.ohn + 1
  c.ot = owner_t
  c.oi = owner_i
end
-- Updates are counted: a promise is overdue only when no update followed it (a count, not a
-- time, so an update in the same millisecond or from a server with a slower clock counts).
c.uc = (c.uc or 0) + 1
if pb > 0 then
  c.pu = c.uc
  c.pt = P.promise
  c.pte = ev.eid  -- the event that states it: a redaction of it clears the text (libs/privacy)
  c.pb = pb
  c.pm = E.now
  c.mt = P.actor_type
  c.mi = P.actor_id
  os_outbox_due(K.profile, K.outbox, os_due_member(P.tenant, id), pb)
end
if P.note ~= '' then
  c.ln = P.note
  c.lv = P.note_visibility
  c.le = ev.eid  -- likewise for the note
end
c.up = E.now
rec = cjson.encode(c)
redis.call('HSET', K.cases, id, rec)
return {0, rec, out[1], ''}
