-- engagement_conversation_start: ConversationService.StartConversation, once the customer is
-- resolved: its CONVERSATION_STARTED event with every effect (a new contact, matched to the
-- case it is about: os_append) and who serves it, kept in its record. A retry answers as the
-- first call did.
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
--   conversation_id       the conversation
--   served_by_type:int    who serves it
--   served_by_id          its id
--   case_id               the open case it is about ('' for the one os_append finds)
--   ev_id                 the event's event_id (a retry's key)
--   ev_blob               the serialized v1.Event
--   ev_channel:int        its channel
--   ev_kind:int           its kind
--   ev_occurred_ms:int    its occurred_at, in ms
--   ev_conversation       its conversation_id ('' none)
--   ev_sentiment          its sentiment ('' none)
--   ev_case               its case_id ('' none)
-- Returns: {already (0|1), the conversation record (case.lua), stream id, stored blob if
--     already started, else the repeat flag JSON ('' when not a repeat contact)}.
-- Errors: os_guard's; OS_CONFLICT conversation_id (ended); OS_NOT_FOUND case_id;
--     OS_CONFLICT case_id (resolved); os_append's.
local E, ev, err = os_engagement_begin(K, P)
if err then return err end
local conv, case_id = P.conversation_id, P.case_id
local rec = redis.call('HGET', K.conversation_records, conv)
if rec and cjson.decode(rec).s == 'e' then
  return redis.error_reply('OS_CONFLICT conversation_id: conversation ' .. conv ..
                           ' has ended; start a new one with another id')
end
local again = os_done_before(ev.eid, rec)
if again then return again end
if case_id ~= '' then
  local c = os_case_get(case_id)
  if not c then
    return redis.error_reply('OS_NOT_FOUND case_id: customer ' .. P.customer_id ..
                             ' has no case ' .. case_id)
  end
  if c.s ~= 'o' then
    return redis.error_reply('OS_CONFLICT case_id: case ' .. case_id .. ' is resolved')
  end
end
local out, e2 = os_append({ev})
if not out then return e2 end
rec = redis.call('HGET', K.conversation_records, conv)
local r
if rec then
  r = cjson.decode(rec)
else
  -- Seen before conversation records existed: no contact to count now.
  r = {ch = ev.ch, s = 'o', ca = case_id, st = ev.occ, en = 0, h = 0, oc = '', wc = '',
       rp = false}
end
r.bt = P.served_by_type
r.bi = P.served_by_id
if r.ca == '' then r.ca = case_id end
rec = cjson.encode(r)
redis.call('HSET', K.conversation_records, conv, rec)
local rep = ''
if E.rep then rep = cjson.encode(E.rep) end
return {0, rec, out[1], rep}
