-- merge_move_index: moves an identifier index entry from one customer to another by
-- compare-and-set (a merge's and an unmerge's identifiers step).
--
-- KEYS:
--   index            the identifier's index key (keys::IdentifierKey)
-- ARGV:
--   new_owner        the customer the entry moves to
--   old_owner        the customer it moves from
-- Returns: 1 when the new owner has the entry afterwards (moved now or before), else 0 (the
--   entry names someone else, or nobody: left alone).
-- Errors: none of its own.
local owner = redis.call('GET', K.index)
if owner == P.new_owner then return 1 end
if owner == P.old_owner then
  redis.call('SET', K.index, P.new_owner)
  return 1
end
return 0
