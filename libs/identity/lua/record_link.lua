-- identity_record_link: records a link on the customer (once its index entry is claimed), or
-- refreshes last_seen and raises the verification of an existing one.
--
-- KEYS:
--   profile            the customer's profile hash
--   identifiers        its identifiers hash
-- ARGV:
--   customer_id        the customer's id (for the guard's errors)
--   field              the identifier's field ("<type>:<value>")
--   evidence           a new link's evidence (libs/identity/profile_codec.h: v2|first|last|...)
--   now_ms             last_seen of an existing link (ms, written as given)
--   verification:int   the link's verification; an existing one is only ever raised
-- Returns: 1 when the customer did not have the identifier, 0 when it had (refreshed).
-- Errors: the guard's: OS_NOT_FOUND, OS_MOVED, OS_BUSY (see os_guard).
local err = os_guard(K.profile, P.customer_id, true)
if err then return err end
local cur = redis.call('HGET', K.identifiers, P.field)
if not cur then
  redis.call('HSET', K.identifiers, P.field, P.evidence)
  return 1
end
-- A link written before evidence had versions is only its first-seen ms.
local first, ver, rest = string.match(cur, '^v2|(%-?%d+)|%-?%d+|(%d+)|(.*)$')
if not first then first, ver, rest = cur, '1', '0|4|||' end
if P.verification > tonumber(ver) then ver = P.verification end
redis.call('HSET', K.identifiers, P.field,
           'v2|' .. first .. '|' .. P.now_ms .. '|' .. ver .. '|' .. rest)
return 0
