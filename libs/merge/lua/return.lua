-- merge_return: appends to an unmerge's source one chunk of the events tagged with the merge
-- that its timeline lacks (by event id): what came from it, and what was appended through its
-- id or identifiers while merged.
--
-- KEYS:
--   timeline         the source's timeline stream
--   dedup            its dedup hash
-- ARGV:
--   events...        per event, 4 values: event id, blob, appended ms, the merge tags it keeps
--                    ('' for none)
-- Returns: how many events were appended.
-- Errors: none of its own.
local e = P.events
local n = 0
for i = 1, #e, 4 do
  if redis.call('HEXISTS', K.dedup, e[i]) == 0 then
    local sid
    if e[i + 3] ~= '' then
      sid = redis.call('XADD', K.timeline, '*', 'e', e[i + 1], 'a', e[i + 2], 'm', e[i + 3])
    else
      sid = redis.call('XADD', K.timeline, '*', 'e', e[i + 1], 'a', e[i + 2])
    end
    redis.call('HSET', K.dedup, e[i], sid)
    n = n + 1
  end
end
return n
