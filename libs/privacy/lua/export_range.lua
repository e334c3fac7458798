-- privacy_export_range: one page of a customer's events, oldest first, for ExportCustomer.
--
-- KEYS:
--   profile        the customer's profile hash
--   timeline       its timeline stream
-- ARGV:
--   customer_id    the customer
--   start          the first stream id ('-', or '(<id>' for after <id>)
--   count:int      events at most
-- Flags: no-writes
-- Returns: the entries (XRANGE).
-- Errors: os_guard's without OS_BUSY.
local err = os_guard(K.profile, P.customer_id, false)
if err then return err end
return redis.call('XRANGE', K.timeline, P.start, '+', 'COUNT', P.count)
