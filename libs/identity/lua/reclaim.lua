-- identity_reclaim: compare-and-set of an identifier's owner: moves the index entry to
-- `new_owner` when `expected_owner` has it (Link taking an identifier from a customer merged into
-- the linking one, or putting it back).
--
-- KEYS:
--   index            the identifier's index entry (a string: the owner's id)
-- ARGV:
--   new_owner        the customer the entry moves to
--   expected_owner   the customer that must have it
-- Returns: the owner before (nil when none): the move happened when it is expected_owner.
-- Errors: none of its own.
local owner = redis.call('GET', K.index)
if owner == P.expected_owner then redis.call('SET', K.index, P.new_owner) end
return owner
