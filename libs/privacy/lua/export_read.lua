-- privacy_export_read: a customer's profile and records, for ExportCustomer's first documents.
--
-- KEYS:
--   profile                the customer's profile hash
--   identifiers            its identifiers hash
--   conversation_records   its conversation records hash
--   cases                  its cases hash
--   facts                  its facts hash
-- ARGV:
--   customer_id            the customer
-- Flags: no-writes
-- Returns: {profile, identifiers, conversation records, cases, facts}, each a HGETALL.
-- Errors: os_guard's without OS_BUSY (not found, erased, merged: OS_MOVED).
local err = os_guard(K.profile, P.customer_id, false)
if err then return err end
return {redis.call('HGETALL', K.profile), redis.call('HGETALL', K.identifiers),
        redis.call('HGETALL', K.conversation_records), redis.call('HGETALL', K.cases),
        redis.call('HGETALL', K.facts)}
