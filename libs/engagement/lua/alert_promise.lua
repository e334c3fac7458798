-- engagement_alert_promise: one due promise of AlertStore::ScanDuePromises: raises
-- PROMISE_OVERDUE (once: os_raise_alert) when the promise is still due, its case open and not
-- updated since the promise was made; forgets the promise unless it was moved to a later time.
-- Any number of instances may check the same promise: it is raised at most once.
--
-- KEYS:
--   profile                the customer's profile hash
--   cases                  the customer's cases
--   outbox                 its outbox: alerts, journey counters, activity (libs/outbox)
--   due_promises           promises by due time, across tenants
-- ARGV:
--   customer_id            the customer's id
--   now_ms:int             now, in ms
--   member                 the promise's member of due_promises ("<tenant>|<customer>|<case>")
--   case_id                its case
--   due_text               its due time as the alert's message shows it
-- Returns: 1 when the alert was raised, else 0.
-- Errors: none.
os_engagement(K, P)
local score = tonumber(redis.call('ZSCORE', K.due_promises, P.member) or '-1')
if score < 0 or score > P.now_ms then return 0 end
local id = P.case_id
local c = os_case_get(id)
local raised = 0
if c and c.s == 'o' and c.pb == score and (c.uc or 0) == (c.pu or 0) then
  os_raise_alert('promise_overdue:' .. P.customer_id .. ':' .. id .. ':' ..
                 string.format('%d', c.pb), 1, id,
                 string.format('promise "%s" to customer %s (case "%s") was due %s; the ' ..
                               'case has had no update since', c.pt, P.customer_id, c.tp,
                               P.due_text))
  raised = 1
end
redis.call('ZREM', K.due_promises, P.member)
return raised
