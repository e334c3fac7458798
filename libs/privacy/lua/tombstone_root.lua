-- privacy_tombstone_root: an erase's first step: the profile becomes a tombstone (erased_at
-- only); its old fields move aside until the erase's last step, for the suggestion index.
--
-- KEYS:
--   profile          the customer's profile hash
--   erased_profile   where its old fields go (keys::CustomerKeys::erased_profile)
--   notify           the customer's channel ('erased' is published on it)
-- ARGV:
--   customer_id      the customer (for the errors)
--   now_ms           erased_at
-- Returns: {'tombstoned', ms} now, {'erased', ms} by an earlier run, or {'moved', target} when
--     the customer was merged into another (nothing changed).
-- Errors: OS_NOT_FOUND (no such customer), OS_BUSY (held by a merge; nothing changed).
local g = redis.call('HMGET', K.profile, 'created_at', 'erased_at', 'merged_into', 'merge_lock')
if g[2] then return {'erased', g[2]} end
if not g[1] then
  return redis.error_reply('OS_NOT_FOUND customer ' .. P.customer_id .. ' not found')
end
if g[3] then return {'moved', g[3]} end
if g[4] then
  return redis.error_reply('OS_BUSY customer ' .. P.customer_id .. ' is held by merge ' .. g[4] ..
                           '; retry shortly')
end
redis.call('RENAME', K.profile, K.erased_profile)
redis.call('HSET', K.profile, 'erased_at', P.now_ms)
redis.call('SPUBLISH', K.notify, 'erased')
return {'tombstoned', P.now_ms}
