-- merge_remove_chunk: deletes from an unmerge's target one chunk of the events the unmerge
-- gives back (their dedup entries too, when they still point at them).
--
-- KEYS:
--   timeline         the target's timeline stream
--   dedup            its dedup hash
--   merge_state      its merge state hash
-- ARGV:
--   merge_id         the merge being undone
--   pairs...         (stream id, event id) pairs
-- Returns: 1, or 0 when the remove step has finished already (nothing deleted).
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':unmerged') == 1 then return 0 end
local p = P.pairs
for i = 1, #p, 2 do
  redis.call('XDEL', K.timeline, p[i])
  if redis.call('HGET', K.dedup, p[i + 1]) == p[i] then redis.call('HDEL', K.dedup, p[i + 1]) end
end
return 1
