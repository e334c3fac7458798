-- merge_swap: the end of a merge's stage step, on the target: the staged timeline, dedup and
-- remap replace the live ones by RENAME (the old values are UNLINKed: freed in the background),
-- so its time does not grow with the timeline; the profile fields the target takes and the
-- merged open conversations are set, the target's overwritten profile values are kept for an
-- Unmerge, the engagement state follows (os_merge_engagement, libs/merge/lua/engagement.lua),
-- and the stream head is recorded. Guarded by a per-merge marker: a second run does nothing.
-- The remap hash sends every stream id the target's readers may hold (in a Watch cursor or a
-- List page token) to the id its event has now.
--
-- KEYS:
--   timeline                 the target's timeline stream
--   staging                  the merge's staging stream
--   dedup                    the target's dedup hash
--   staging_dedup            the merge's staging dedup hash
--   merge_state              the target's merge state hash
--   profile                  the target's profile hash
--   conversations            the target's open conversations hash
--   remap                    the target's remap hash
--   staging_remap            the merge's staging remap hash
--   source_conversation_records
--                            the source's conversation records
--   source_cases             the source's cases
--   source_facts             the source's facts
--   source_contacts          the source's contacts
--   source_contact_channels  the source's latest contact per channel
--   source_signals           the source's sentiment counts
--   target_conversation_records
--                            the target's conversation records
--   target_cases             the target's cases
--   target_facts             the target's facts
--   target_contacts          the target's contacts
--   target_contact_channels  the target's latest contact per channel
--   target_signals           the target's sentiment counts
--   due_promises             the due-promise index (keys::DuePromisesKey)
--   journey_open             the tenant's open-case index (keys::TenantKeys::journey_open)
-- ARGV:
--   merge_id                 the merge
--   staged:int               how many entries the staging stream must hold
--   priors                   the target's profile values the merge overwrites (for an Unmerge)
--   counts                   "<events moved>|<events skipped>", kept in the swap marker
--   source_id                the source customer
--   target_id                the target customer
--   tenant                   the tenant (due-promise members are "<tenant>|<customer>|<case>")
--   sets...                  n, then n (field, value) profile fields to set; then m, then m
--                            (conversation id, value) open conversations to set
-- Returns: the target's stream head after the swap (also when swapped before).
-- Errors: OS_CONFLICT staging holds <n> entries, expected <staged>.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':swapped') == 1 then
  return redis.call('HGET', K.merge_state, P.merge_id .. ':head')
end
local len = redis.call('XLEN', K.staging)
if len ~= P.staged then
  return redis.error_reply('OS_CONFLICT staging holds ' .. len .. ' entries, expected ' ..
                           P.staged)
end
redis.call('UNLINK', K.timeline)
if len > 0 then redis.call('RENAME', K.staging, K.timeline) end
redis.call('UNLINK', K.dedup)
if redis.call('EXISTS', K.staging_dedup) == 1 then redis.call('RENAME', K.staging_dedup, K.dedup) end
if redis.call('EXISTS', K.staging_remap) == 1 then
  redis.call('UNLINK', K.remap)
  redis.call('RENAME', K.staging_remap, K.remap)
end
local s = P.sets
local i = 1
local n = tonumber(s[i]); i = i + 1
for _ = 1, n do redis.call('HSET', K.profile, s[i], s[i + 1]); i = i + 2 end
redis.call('HSET', K.merge_state, P.merge_id .. ':prior', P.priors)
n = tonumber(s[i]); i = i + 1
for _ = 1, n do redis.call('HSET', K.conversations, s[i], s[i + 1]); i = i + 2 end
local head = '0-0'
local last = redis.call('XREVRANGE', K.timeline, '+', '-', 'COUNT', 1)
if #last > 0 then head = last[1][1] end
os_merge_engagement(K, P.merge_id, P.source_id, P.target_id, P.tenant)
-- The marker keeps the counts for a rerun that finds the swap done.
redis.call('HSET', K.merge_state, P.merge_id .. ':swapped', P.counts, P.merge_id .. ':head', head)
return head
