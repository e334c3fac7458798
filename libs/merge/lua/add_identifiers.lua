-- merge_add_identifiers: adds the identifiers a merge moved to the target's identifiers hash,
-- each where absent (a rerun changes nothing).
--
-- KEYS:
--   identifiers      the target's identifiers hash
-- ARGV:
--   pairs...         (field, encoded evidence) pairs
-- Returns: 1.
-- Errors: none of its own.
for i = 1, #P.pairs, 2 do redis.call('HSETNX', K.identifiers, P.pairs[i], P.pairs[i + 1]) end
return 1
