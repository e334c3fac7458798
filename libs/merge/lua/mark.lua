-- merge_mark: marks a merge's source merged into the target (merged_into, merge_id,
-- merged_head) and releases its lock: from here every operation on it is redirected to the
-- target (libs/identity/merged.h). Its watchers are woken to follow.
--
-- KEYS:
--   profile          the source's profile hash
--   notify_channel   the source's notify channel
-- ARGV:
--   target_id        the target customer
--   merge_id         the merge
--   head             the target's stream head after the swap
-- Returns: 1.
-- Errors: OS_CONFLICT customer is neither held nor marked by <merge id>.
local g = redis.call('HMGET', K.profile, 'merge_lock', 'merge_id')
if g[1] ~= P.merge_id and g[2] ~= P.merge_id then
  return redis.error_reply('OS_CONFLICT customer is neither held nor marked by ' .. P.merge_id)
end
redis.call('HSET', K.profile, 'merged_into', P.target_id, 'merge_id', P.merge_id, 'merged_head',
           P.head)
if g[1] == P.merge_id then redis.call('HDEL', K.profile, 'merge_lock') end
redis.call('SPUBLISH', K.notify_channel, 'merged')
return 1
