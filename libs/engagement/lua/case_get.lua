-- engagement_case_get: CaseService.GetCase, once the customer is resolved: one case's record.
--
-- KEYS:
--   profile                the customer's profile hash
--   cases                  its cases
-- ARGV:
--   customer_id            the customer's id
--   case_id                the case
-- Flags: no-writes
-- Returns: the case record (JSON, described in case.lua).
-- Errors: os_guard's (OS_NOT_FOUND, OS_MOVED); OS_NOT_FOUND case_id.
os_engagement(K, P)
local err = os_guard(K.profile, P.customer_id, false)
if err then return err end
local rec = redis.call('HGET', K.cases, P.case_id)
if not rec then return os_no_case(P.case_id) end
return rec
