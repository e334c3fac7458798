-- merge_unlock: releases a customer's merge lock when `lock` holds it (a refused or abandoned
-- merge or unmerge).
--
-- KEYS:
--   profile          the customer's profile hash
-- ARGV:
--   lock             the merge id
-- Returns: 1 when released, 0 when `lock` did not hold it.
-- Errors: none of its own.
if redis.call('HGET', K.profile, 'merge_lock') == P.lock then
  redis.call('HDEL', K.profile, 'merge_lock')
  return 1
end
return 0
