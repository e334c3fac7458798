-- identity_claim_over: claims an identifier for a new customer when nobody or an erased customer
-- (an erase under way, libs/privacy) owns it: Resolve creating over an erased owner.
--
-- KEYS:
--   index          the identifier's index entry (a string: the owner's id)
-- ARGV:
--   new_owner      the new customer
--   erased_owner   the erased customer the entry may still name
-- Returns: the owner before (nil when none): the claim happened when it is nil or erased_owner.
-- Errors: none of its own.
local owner = redis.call('GET', K.index)
if not owner or owner == P.erased_owner then redis.call('SET', K.index, P.new_owner) end
return owner
