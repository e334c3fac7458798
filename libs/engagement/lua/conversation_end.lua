-- engagement_conversation_end: ConversationService.EndConversation, once the customer is
-- resolved: its CONVERSATION_ENDED event with every effect (os_append ends the record) and
-- the outcome and wrap-up code, kept in its record. The event's channel and case id are the
-- conversation's, added to it here. Ending an ended conversation changes nothing.
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
--   outcome               how it ended
--   wrap_up_code          the contact center's wrap-up code ('' none)
--   ev_id                 the event's event_id (a retry's key)
--   ev_blob               the serialized v1.Event
--   ev_channel:int        its channel
--   ev_kind:int           its kind
--   ev_occurred_ms:int    its occurred_at, in ms
--   ev_conversation       its conversation_id ('' none)
--   ev_sentiment          its sentiment ('' none)
--   ev_case               its case_id ('' none)
-- Returns: {duplicate (0|1), the conversation record (case.lua), stream id ('' when ended
--     before), stored blob if duplicate}.
-- Errors: os_guard's; OS_NOT_FOUND conversation_id; os_append's.
local _, ev, err = os_engagement_begin(K, P)
if err then return err end
local conv = P.conversation_id
local rec = redis.call('HGET', K.conversation_records, conv)
local again = os_done_before(ev.eid, rec)
if again then return again end
if not rec then return os_no_conversation(conv) end
local r = cjson.decode(rec)
if r.s == 'e' then return {1, rec, '', ''} end
ev.ch = r.ch
ev.blob = ev.blob .. os_pb_int(2, r.ch)
if r.ca ~= '' then
  ev.case = r.ca
  ev.blob = ev.blob .. os_pb_str(10, r.ca)
end
local out, e2 = os_append({ev})
if not out then return e2 end
r = cjson.decode(redis.call('HGET', K.conversation_records, conv))
r.oc = P.outcome
r.wc = P.wrap_up_code
rec = cjson.encode(r)
redis.call('HSET', K.conversation_records, conv, rec)
return {0, rec, out[1], ''}
