-- identity_check: the guard alone: may this customer be read (or written)?
--
-- KEYS:
--   profile        the customer's profile hash
-- ARGV:
--   customer_id    the customer's id (for the errors)
--   write:int      1: the customer must also take writes (not held by a merge)
-- Flags: no-writes
-- Returns: 1 when it may be used.
-- Errors: OS_NOT_FOUND (no such customer, or erased), OS_MOVED (merged), and when `write`,
--     OS_BUSY (held by a merge): see os_guard.
local err = os_guard(K.profile, P.customer_id, P.write == 1)
if err then return err end
return 1
