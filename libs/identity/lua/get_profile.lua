-- identity_get_profile: a customer's profile and identifiers.
--
-- KEYS:
--   profile        the customer's profile hash
--   identifiers    its identifiers hash
-- ARGV:
--   customer_id    the customer's id (for the guard's errors)
-- Flags: no-writes
-- Returns: {profile (HGETALL), identifiers (HGETALL)} (libs/identity/profile_codec.h).
-- Errors: OS_NOT_FOUND (no such customer, or erased), OS_MOVED (merged): see os_guard.
local err = os_guard(K.profile, P.customer_id, false)
if err then return err end
return {redis.call('HGETALL', K.profile), redis.call('HGETALL', K.identifiers)}
