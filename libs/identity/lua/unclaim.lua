-- identity_unclaim: deletes an identifier's index entry when it names the customer (Unlink, and
-- Link giving back a claim it could not record).
--
-- KEYS:
--   index          the identifier's index entry (a string: the owner's id)
-- ARGV:
--   customer_id    the customer that must own it
-- Returns: 1 when deleted; else the owner (a string), or nil when nobody owns it.
-- Errors: none of its own.
local owner = redis.call('GET', K.index)
if owner == P.customer_id then
  redis.call('DEL', K.index)
  return 1
end
return owner
