-- merge_release_source: the unmerge's release step, on the source: its merge fields and lock
-- go, and its activity and open conversations become those recomputed from its timeline.
--
-- KEYS:
--   profile          the source's profile hash
--   conversations    its open conversations hash
-- ARGV:
--   lock             the merge being undone (it holds the source's lock)
--   sets...          n, then n (field, ms) activity fields; then m, then m (conversation id,
--                    value) open conversations
-- Returns: 1, or 0 when `lock` does not hold the source (released before: nothing changes).
-- Errors: none of its own.
if redis.call('HGET', K.profile, 'merge_lock') ~= P.lock then return 0 end
redis.call('HDEL', K.profile, 'merged_into', 'merge_id', 'merged_head', 'merge_lock')
for _, f in ipairs(redis.call('HKEYS', K.profile)) do
  if string.sub(f, 1, 4) == 'act:' then redis.call('HDEL', K.profile, f) end
end
local s = P.sets
local i = 1
local n = tonumber(s[i]); i = i + 1
for _ = 1, n do redis.call('HSET', K.profile, s[i], s[i + 1]); i = i + 2 end
redis.call('DEL', K.conversations)
n = tonumber(s[i]); i = i + 1
for _ = 1, n do redis.call('HSET', K.conversations, s[i], s[i + 1]); i = i + 2 end
return 1
