-- identity_create: creates a customer (Resolve's new customer) unless it exists.
--
-- KEYS:
--   profile        the new customer's profile hash
--   identifiers    its identifiers hash
-- ARGV:
--   now_ms:int     created_at and updated_at; the link's evidence of the identifier
--   field          the identifier's field in the identifiers hash ("<type>:<value>")
-- Returns: 1 when created, 0 when the profile existed (nothing is written then).
-- Errors: none of its own.
if redis.call('EXISTS', K.profile) == 1 then return 0 end
redis.call('HSET', K.profile, 'created_at', P.now_ms, 'updated_at', P.now_ms)
redis.call('HSET', K.identifiers, P.field, P.now_ms)
return 1
