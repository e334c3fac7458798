-- merge_swap: the end of a merge's stage step, on the target: the staged timeline, dedup and
-- remap replace the live ones by RENAME (the old values are UNLINKed: freed in the background),
-- so its time does not grow with the timeline; the profile fields the target takes and the
-- merged open conversations are set, the target's overwritten profile values are kept for an
-- Unmerge, the engagement state staged from the source follows (os_merge_engagement,
-- libs/merge/lua/engagement.lua), and the stream head is recorded. Every key is the target's.
-- Guarded by a per-merge marker: a second run does nothing.
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
--   staging_engagement       the source's engagement state, staged (merge_stage_engagement)
--   conversation_records     the target's conversation records
--   cases                    the target's cases
--   facts                    the target's facts
--   contacts                 the target's contacts
--   contact_channels         the target's latest contact per channel
--   signals                  the target's sentiment counts
--   outbox                   the target's outbox: the moved cases' journey entries and due
--                            promises (libs/outbox)
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
local eg = {staging = K.staging_engagement, merge_state = K.merge_state, profile = K.profile,
            outbox = K.outbox, conversation_records = K.conversation_records,
            cases = K.cases, facts = K.facts, contacts = K.contacts,
            contact_channels = K.contact_channels, signals = K.signals}
os_merge_engagement(eg, P.merge_id, P.source_id, P.target_id, P.tenant)
-- The marker keeps the counts for a rerun that finds the swap done.
redis.call('HSET', K.merge_state, P.merge_id .. ':swapped', P.counts, P.merge_id .. ':head', head)
return head
