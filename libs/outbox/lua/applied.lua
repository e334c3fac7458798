-- os_applied_* (helper): the per-customer high-water mark of outbox_journey and outbox_due, in
-- the target's slot: the sequence number (s, libs/outbox/lua/write.lua) of the last entry of an
-- owner's outbox applied there, so a replay applies nothing twice. Marks not written for kept
-- ms are forgotten, a few per call (an entry applied and not deleted for that long would be
-- applied again: libs/outbox/README.md).
--
--   local last = os_applied_last(applied, owner)
--   ... apply entries with s > last, in order; last = the last one applied ...
--   os_applied_save(applied, applied_at, owner, last, n, now, kept)  n: entries applied

local function os_applied_last(applied, owner)
  return tonumber(redis.call('HGET', applied, owner) or '0')
end

local function os_applied_save(applied, applied_at, owner, last, n, now, kept)
  if n > 0 then
    redis.call('HSET', applied, owner, last)
    redis.call('ZADD', applied_at, now, owner)
  end
  local old = redis.call('ZRANGEBYSCORE', applied_at, '-inf', now - kept, 'LIMIT', 0, 16)
  if #old > 0 then
    redis.call('HDEL', applied, unpack(old))
    redis.call('ZREM', applied_at, unpack(old))
  end
end
