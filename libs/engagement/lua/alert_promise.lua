-- engagement_alert_promise: one due promise of AlertStore::ScanDuePromises, as the scan read it
-- from the due-promise index (another slot): raises PROMISE_OVERDUE (once: os_raise_alert)
-- when the promise is the case's current one, the case is open and not updated since the
-- promise was made; and forgets the promise (an outbox entry) unless it was moved or cleared
-- since (the entries that did so update the index). Any number of instances may check the same
-- promise: it is raised at most once.
--
-- KEYS:
--   profile                the customer's profile hash
--   cases                  the customer's cases
--   outbox                 its outbox: alerts, journey counters, activity (libs/outbox)
-- ARGV:
--   customer_id            the customer's id
--   now_ms:int             now, in ms
--   member                 the promise's member of the due index ("<tenant>|<customer>|<case>")
--   case_id                its case
--   due_ms:int             its due time, as the index holds it
--   due_text               its due time as the alert's message shows it
-- Returns: 1 when the alert was raised, 0 when not, 2 when the customer has no such case any
--   more (an erased or merged customer: the caller removes the member itself).
-- Errors: none.
os_engagement(K, P)
local id = P.case_id
local c = os_case_get(id)
if not c then return 2 end
if c.pb ~= P.due_ms then return 0 end
local raised = 0
if c.s == 'o' and (c.uc or 0) == (c.pu or 0) then
  os_raise_alert('promise_overdue:' .. P.customer_id .. ':' .. id .. ':' ..
                 string.format('%d', c.pb), 1, id,
                 string.format('promise "%s" to customer %s (case "%s") was due %s; the ' ..
                               'case has had no update since', c.pt, P.customer_id, c.tp,
                               P.due_text))
  raised = 1
end
os_outbox_undue(K.profile, K.outbox, P.member)
return raised
