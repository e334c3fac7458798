-- privacy_tombstone_source: the tombstone of a customer merged into the one erased (the same
-- person); its profile, if any, moves aside as the root's does.
--
-- KEYS:
--   profile          the merged customer's profile hash
--   erased_profile   where its old fields go
--   notify           its channel ('erased' is published on it)
-- ARGV:
--   now_ms           erased_at
-- Returns: 1 when tombstoned now, 0 when it was already.
-- Errors: none of its own.
if redis.call('HEXISTS', K.profile, 'erased_at') == 1 then return 0 end
if redis.call('EXISTS', K.profile) == 1 then redis.call('RENAME', K.profile, K.erased_profile) end
redis.call('HSET', K.profile, 'erased_at', P.now_ms)
redis.call('SPUBLISH', K.notify, 'erased')
return 1
