-- privacy_drop_keys: an erase's last step for one customer: every key of it but the tombstone
-- (made here if missing) goes.
--
-- KEYS:
--   profile        the customer's profile hash (left a tombstone: erased_at only)
--   others...      every other key of the customer (its identifiers, timeline, ..., and the
--                  staging keys of the merges it took part in)
-- ARGV:
--   now_ms         erased_at, when the tombstone is made here
-- Returns: how many of the other keys existed.
-- Errors: none of its own.
if redis.call('HEXISTS', K.profile, 'erased_at') == 0 then
  redis.call('DEL', K.profile)
  redis.call('HSET', K.profile, 'erased_at', P.now_ms)
end
local n = 0
for _, key in ipairs(K.others) do n = n + redis.call('UNLINK', key) end
return n
