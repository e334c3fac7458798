-- merge_restore: the end of an unmerge's return step, on the source: the records that came
-- with the merge (conversation records, cases, facts whose merge chain ends with it), staged
-- into the source's slot from the target by merge_stage_engagement, become the source's again
-- as they are now, with the merge dropped from their chain; an open case's journey entry and
-- due promise move back through the source's outbox (os_unmerge_restore,
-- libs/merge/lua/engagement.lua). Guarded by a per-merge marker: a second run does nothing.
--
-- KEYS:
--   merge_state              the source's merge state hash
--   staging                  the staging hash (keys::CustomerKeys::merge_staging_engagement)
--   profile                  the source's profile hash (the outbox's sequence numbers)
--   outbox                   the source's outbox (libs/outbox)
--   conversation_records     the source's conversation records
--   cases                    the source's cases
--   facts                    the source's facts
-- ARGV:
--   merge_id                 the merge being undone
--   source_id                the source customer
--   target_id                the target customer
--   tenant                   the tenant (due-promise members are "<tenant>|<customer>|<case>")
-- Returns: 1, or 0 when done before.
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':restored') == 1 then return 0 end
os_unmerge_restore(K, P.merge_id, P.source_id, P.target_id, P.tenant)
redis.call('HSET', K.merge_state, P.merge_id .. ':restored', '1')
return 1
