-- engagement_conversation_handoff: ConversationService.Handoff, once the customer is resolved:
-- the conversation passes from one actor to another (on another channel, when to_channel is
-- set: a channel switch of its case), with its HANDOFF event and every effect, and the facts
-- collected so far are recorded (os_write_facts). The event's channel (when to_channel is 0)
-- and case id are the conversation's, added to it here. A retry answers as the first call did.
--
-- KEYS:
--   profile               the customer's profile hash
--   timeline              its timeline stream
--   dedup                 its event_id -> stream id hash
--   conversations         its open conversations
--   identifiers           its identifiers hash (the via field's merge chain)
--   conversation_records  its conversation records
--   cases                 its cases
--   facts                 its facts
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
--   from_type:int         who hands it off (must be who serves it, when anyone does)
--   from_id               its id
--   to_type:int           who takes it
--   to_id                 its id
--   to_channel:int        the channel it continues on (0: the same)
--   max_facts:int         current facts a customer may have (kMaxFactsPerCustomer)
--   ev_id                 the event's event_id (a retry's key)
--   ev_blob               the serialized v1.Event
--   ev_channel:int        its channel
--   ev_kind:int           its kind
--   ev_occurred_ms:int    its occurred_at, in ms
--   ev_conversation       its conversation_id ('' none)
--   ev_sentiment          its sentiment ('' none)
--   ev_case               its case_id ('' none)
--   new_facts...          the facts to record, os_fact_fields values each (facts.lua)
-- Returns: {duplicate (0|1), the conversation record (case.lua), stream id, stored blob if
--     duplicate, then each fact's record}.
-- Errors: os_guard's; OS_NOT_FOUND conversation_id; OS_CONFLICT conversation_id (ended);
--     OS_CONFLICT from; os_check_facts' (OS_NOT_FOUND collected[i].case_id, OS_LIMIT
--     collected); os_append's.
local _, ev, err = os_engagement_begin(K, P)
if err then return err end
local conv = P.conversation_id
local rec = redis.call('HGET', K.conversation_records, conv)
local again = os_done_before(ev.eid, rec)
if again then
  for _, f in ipairs(os_read_facts(P.new_facts)) do again[#again + 1] = f end
  return again
end
if not rec then return os_no_conversation(conv) end
local r = cjson.decode(rec)
if r.s == 'e' then
  return redis.error_reply('OS_CONFLICT conversation_id: conversation ' .. conv ..
                           ' has ended; start a new conversation')
end
local from_t, from_i = P.from_type, P.from_id
if r.bt ~= 0 and (r.bt ~= from_t or r.bi ~= from_i) then
  return redis.error_reply('OS_CONFLICT from: conversation ' .. conv .. ' is served by ' ..
                           r.bt .. ':' .. r.bi .. ', not ' .. from_t .. ':' .. from_i)
end
local ferr = os_check_facts(P.new_facts, 'collected', P.max_facts)
if ferr then return ferr end
local ch = P.to_channel
if ch == 0 then
  ch = r.ch
  ev.blob = ev.blob .. os_pb_int(2, ch)
end
ev.ch = ch
if r.ca ~= '' then
  ev.case = r.ca
  ev.blob = ev.blob .. os_pb_str(10, r.ca)
end
local out, e2 = os_append({ev})
if not out then return e2 end
r = cjson.decode(redis.call('HGET', K.conversation_records, conv))
r.h = r.h + 1
r.bt = P.to_type
r.bi = P.to_id
if ch ~= r.ch and r.ca ~= '' then
  local c = os_case_get(r.ca)
  if c and c.s == 'o' then
    os_case_channel(c, ch)
    os_case_put(r.ca, c)
  end
end
r.ch = ch
rec = cjson.encode(r)
redis.call('HSET', K.conversation_records, conv, rec)
local res = {0, rec, out[1], ''}
for _, f in ipairs(os_write_facts(P.new_facts, from_t, from_i, ch, conv, ev.eid)) do
  res[#res + 1] = f
end
return res
