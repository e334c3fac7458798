-- privacy_release_pending: drops an erase's pending record when this run's token wrote it (an
-- erase refused before its tombstone leaves nothing behind).
--
-- KEYS:
--   pending        the pending erasures hash (keys::PendingErasuresKey)
-- ARGV:
--   field          "<tenant>/<customer>"
--   token          the run's token (the record is "<token>|...")
-- Returns: 1 when dropped, else 0.
-- Errors: none of its own.
local v = redis.call('HGET', K.pending, P.field)
if v and string.sub(v, 1, #P.token + 1) == P.token .. '|' then
  redis.call('HDEL', K.pending, P.field)
  return 1
end
return 0
