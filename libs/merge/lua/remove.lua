-- merge_remove: the end of an unmerge's remove step, on the target: the profile values the
-- merge overwrote come back (where the merge's value is still there), activity and open
-- conversations are replaced by those recomputed from the remaining events, and the engagement
-- state that came from the source goes (os_unmerge_engagement, libs/merge/lua/engagement.lua:
-- merge_restore gave the records back to the source before). Every key is the target's.
-- Guarded by a per-merge marker: a second run does nothing.
--
-- KEYS:
--   merge_state              the target's merge state hash
--   profile                  the target's profile hash
--   conversations            the target's open conversations hash
--   staging                  the source's contacts and sentiment counts, staged
--                            (merge_stage_engagement)
--   conversation_records     the target's conversation records
--   cases                    the target's cases
--   facts                    the target's facts
--   contacts                 the target's contacts
--   contact_channels         the target's latest contact per channel
--   signals                  the target's sentiment counts
-- ARGV:
--   merge_id                 the merge being undone
--   sets...                  n, then n (field, merged value, had 0/1, old value) profile
--                            restores; then m, then m (field, ms) activity fields; then k, then
--                            k (conversation id, value) open conversations
-- Returns: 1, or 0 when done before.
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':unmerged') == 1 then return 0 end
local s = P.sets
local i = 1
local n = tonumber(s[i]); i = i + 1
for _ = 1, n do
  if redis.call('HGET', K.profile, s[i]) == s[i + 1] then
    if s[i + 2] == '1' then
      redis.call('HSET', K.profile, s[i], s[i + 3])
    else
      redis.call('HDEL', K.profile, s[i])
    end
  end
  i = i + 4
end
for _, f in ipairs(redis.call('HKEYS', K.profile)) do
  if string.sub(f, 1, 4) == 'act:' then redis.call('HDEL', K.profile, f) end
end
n = tonumber(s[i]); i = i + 1
for _ = 1, n do redis.call('HSET', K.profile, s[i], s[i + 1]); i = i + 2 end
redis.call('DEL', K.conversations)
n = tonumber(s[i]); i = i + 1
for _ = 1, n do redis.call('HSET', K.conversations, s[i], s[i + 1]); i = i + 2 end
os_unmerge_engagement(K, P.merge_id)
redis.call('HSET', K.merge_state, P.merge_id .. ':unmerged', '1')
return 1
