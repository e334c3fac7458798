-- identity_unlink: removes an identifier from the customer's identifiers (after its index entry).
--
-- KEYS:
--   profile        the customer's profile hash (only whether it exists)
--   identifiers    its identifiers hash
-- ARGV:
--   field          the identifier's field ("<type>:<value>")
-- Returns: {customer exists (0/1), field removed (0/1)}.
-- Errors: none of its own.
local exists = redis.call('EXISTS', K.profile)
local removed = redis.call('HDEL', K.identifiers, P.field)
return {exists, removed}
