-- engagement_conversation_facts: ConversationService.RecordFacts, once the customer is resolved:
-- its FACTS_RECORDED event with every effect, and the facts (os_write_facts: a fact of the same
-- type and name is superseded, its previous value kept). A retry answers as the first call did.
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
--   actor_type:int        who records them
--   actor_id              its id
--   channel:int           the channel they were stated on
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
-- Returns: {duplicate (0|1), '', stream id, stored blob if duplicate, then each fact's
--     record}.
-- Errors: os_guard's; os_check_facts' (OS_NOT_FOUND facts[i].case_id, OS_LIMIT facts);
--     os_append's.
local _, ev, err = os_engagement_begin(K, P)
if err then return err end
local again = os_done_before(ev.eid, '')
if again then
  for _, f in ipairs(os_read_facts(P.new_facts)) do again[#again + 1] = f end
  return again
end
local ferr = os_check_facts(P.new_facts, 'facts', P.max_facts)
if ferr then return ferr end
local out, e2 = os_append({ev})
if not out then return e2 end
local res = {0, '', out[1], ''}
for _, f in ipairs(os_write_facts(P.new_facts, P.actor_type, P.actor_id, P.channel, ev.conv,
                                  ev.eid)) do
  res[#res + 1] = f
end
return res
