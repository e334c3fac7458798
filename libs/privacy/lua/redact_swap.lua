-- privacy_redact_swap: the last step of a redaction's copy: copies what was appended since the
-- last step (answering 'more' when that is more than one step's bounds: appends are never
-- held), drops the copies of entries deleted from the timeline meanwhile (retention trims the
-- oldest), and when the copy then holds exactly the timeline's entries gives it the timeline's
-- last id, entries-added and max-deleted id and puts it in the timeline's place (the old stream
-- is freed in the background). A copy that does not match (a merge or unmerge rebuilt the
-- timeline meanwhile: the merge state's length changed) starts over ('restart').
--
-- KEYS:
--   profile            the customer's profile hash
--   timeline           its timeline stream (the one being rebuilt)
--   staging            the copy being built (keys::CustomerKeys::timeline_rebuild)
--   dedup              its event id -> stream id hash
--   redaction          the redaction hash of this timeline
--   merge_state        its merge state hash
-- ARGV:
--   customer_id        the customer (for the guard's errors)
--   token              the redaction's token
--   event_id           the event redacted
--   blob               the event to store in its place
--   max_entries:int    entries copied at most
--   max_bytes:int      bytes of fields and values copied at most, plus one entry
--   largest_entry:int  the largest entry an append stores
--   root:int           1 for the customer whose timeline holds the event (guarded), else 0
-- Returns: {'more'|'restart'|'swapped'|'stale', entries, bytes}.
-- Errors: for the root, os_guard's, OS_BUSY included (a merge holds the customer: retry).
local answer, n, bytes, caught = os_redact_step(K, P, true)
if answer then return answer end
if not caught then return {'more', n, bytes} end
local first = redis.call('XRANGE', K.timeline, '-', '+', 'COUNT', 1)
if #first == 0 then
  redis.call('UNLINK', K.staging)
else
  redis.call('XTRIM', K.staging, 'MINID', first[1][1])
end
local mgn = redis.call('HLEN', K.merge_state)
if redis.call('XLEN', K.staging) ~= redis.call('XLEN', K.timeline) or
   tonumber(redis.call('HGET', K.redaction, 'mgn')) ~= mgn then
  redis.call('UNLINK', K.staging)
  redis.call('HSET', K.redaction, 'copied', '0-0', 'mgn', mgn)
  return {'restart', n, bytes}
end
if #first > 0 then
  local top, added, maxdel = os_stream_ids(K.timeline)
  redis.call('XSETID', K.staging, top, 'ENTRIESADDED', added, 'MAXDELETEDID', maxdel)
  redis.call('UNLINK', K.timeline)
  redis.call('RENAME', K.staging, K.timeline)
end
redis.call('HDEL', K.redaction, 'ptok', 'copied', 'mgn')
redis.call('HSET', K.redaction, 'swapped', P.token)
return {'swapped', n, bytes}
