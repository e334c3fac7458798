-- identity_link_precheck: may this customer take one more identifier? Link's first step, before
-- the identifier's index entry is claimed.
--
-- KEYS:
--   profile            the customer's profile hash
--   identifiers        its identifiers hash
-- ARGV:
--   customer_id        the customer's id (for the errors)
--   field              the identifier's field ("<type>:<value>")
--   max_total:int      identifiers a customer has at most
--   max_per_type:int   identifiers of one type a customer has at most
--   type_name          the identifier's type, the prefix of its field
-- Flags: no-writes
-- Returns: 1 when the customer has the identifier already or has room for it.
-- Errors: OS_LIMIT (at max_total identifiers, or at max_per_type of this type); the guard's:
--     OS_NOT_FOUND, OS_MOVED, OS_BUSY (see os_guard).
local err = os_guard(K.profile, P.customer_id, true)
if err then return err end
if redis.call('HEXISTS', K.identifiers, P.field) == 1 then return 1 end
if redis.call('HLEN', K.identifiers) >= P.max_total then
  return redis.error_reply('OS_LIMIT customer ' .. P.customer_id .. ' already has ' ..
                           P.max_total .. ' identifiers')
end
local prefix, n = P.type_name .. ':', 0
for _, f in ipairs(redis.call('HKEYS', K.identifiers)) do
  if string.sub(f, 1, #prefix) == prefix then n = n + 1 end
end
if n >= P.max_per_type then
  return redis.error_reply('OS_LIMIT customer ' .. P.customer_id .. ' already has ' ..
                           P.max_per_type .. ' identifiers of type ' .. P.type_name)
end
return 1
