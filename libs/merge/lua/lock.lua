-- merge_lock: takes a customer's merge lock for a merge or an unmerge (the lock step, once per
-- customer, lowest id first). From then its writes answer ABORTED (os_guard's OS_BUSY).
--
-- KEYS:
--   profile          the customer's profile hash
-- ARGV:
--   customer_id      the customer's id (for the error messages)
--   lock             the merge id that takes the lock
--   role             'merge' (either side of a merge), 'unmerge-source' or 'unmerge-target'
--   expected_target  for 'unmerge-source': the target the customer must be merged into
--   merge_id         for 'unmerge-source': the merge the customer must be merged by
-- Returns: 1 when the lock is held by `lock` (taken now or before).
-- Errors: OS_NOT_FOUND customer <id> not found; OS_BUSY customer <id> is held by merge <m>;
--   OS_CONFLICT when the customer was merged ('merge'), is not merged by `merge_id`
--   ('unmerge-source') or was since merged into another ('unmerge-target').
local g = redis.call('HMGET', K.profile, 'created_at', 'merged_into', 'merge_lock', 'merge_id')
if not g[1] then
  return redis.error_reply('OS_NOT_FOUND customer ' .. P.customer_id .. ' not found')
end
if g[3] == P.lock then return 1 end
if g[3] then
  return redis.error_reply('OS_BUSY customer ' .. P.customer_id .. ' is held by merge ' .. g[3] ..
                           '; retry shortly')
end
if P.role == 'merge' and g[2] then
  return redis.error_reply('OS_CONFLICT customer ' .. P.customer_id .. ' was merged into ' ..
                           g[2] .. ' (merge ' .. (g[4] or '?') .. ')')
end
if P.role == 'unmerge-source' and (g[2] ~= P.expected_target or g[4] ~= P.merge_id) then
  return redis.error_reply('OS_CONFLICT customer ' .. P.customer_id .. ' is not merged by ' ..
                           P.merge_id)
end
if P.role == 'unmerge-target' and g[2] then
  return redis.error_reply('OS_CONFLICT target ' .. P.customer_id .. ' was since merged into ' ..
                           g[2] .. ' by merge ' .. (g[4] or '?') .. '; unmerge that one first')
end
redis.call('HSET', K.profile, 'merge_lock', P.lock)
return 1
