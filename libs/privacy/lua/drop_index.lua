-- privacy_drop_index: deletes an identifier's index entry when it names one of the erased
-- customers (compare-and-delete: an entry a new customer took meanwhile stays).
--
-- KEYS:
--   index          the identifier's index entry (a string: the owner's id)
-- ARGV:
--   erased...      the erased customers
-- Returns: 1 when deleted, else 0.
-- Errors: none of its own.
local owner = redis.call('GET', K.index)
if not owner then return 0 end
for _, id in ipairs(P.erased) do
  if owner == id then
    redis.call('DEL', K.index)
    return 1
  end
end
return 0
