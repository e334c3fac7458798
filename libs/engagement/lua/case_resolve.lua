-- engagement_case_resolve: CaseService.ResolveCase, once the customer is resolved: the case
-- leaves its stage (its stay is recorded, os_journey_leave) and the due-promise index, with
-- its CASE_RESOLVED event and every effect. Resolving a resolved case changes nothing.
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
--   case_id               the case
--   resolution            how it was resolved ('' none)
--   tenant                the tenant (the due-promise index's member)
--   ev_id                 the event's event_id (a retry's key)
--   ev_blob               the serialized v1.Event
--   ev_channel:int        its channel
--   ev_kind:int           its kind
--   ev_occurred_ms:int    its occurred_at, in ms
--   ev_conversation       its conversation_id ('' none)
--   ev_sentiment          its sentiment ('' none)
--   ev_case               its case_id ('' none)
-- Returns: {duplicate (0|1), the case record (case.lua), stream id ('' when resolved
--     before), stored blob if duplicate}.
-- Errors: os_guard's; OS_NOT_FOUND case_id; os_append's.
local E, ev, err = os_engagement_begin(K, P)
if err then return err end
local id = P.case_id
local rec = redis.call('HGET', K.cases, id)
local again = os_done_before(ev.eid, rec)
if again then return again end
if not rec then return os_no_case(id) end
local c = cjson.decode(rec)
if c.s ~= 'o' then return {1, rec, '', ''} end
local out, e2 = os_append({ev})
if not out then return e2 end
c = cjson.decode(redis.call('HGET', K.cases, id))
os_journey_leave(id, c)
c.s = 'r'
c.rs = E.now
c.rn = P.resolution
c.up = E.now
rec = cjson.encode(c)
redis.call('HSET', K.cases, id, rec)
if c.pb > 0 then os_outbox_undue(K.profile, K.outbox, os_due_member(P.tenant, id)) end
return {0, rec, out[1], ''}
