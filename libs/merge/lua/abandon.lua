-- merge_abandon: gives up a merge that has not swapped (a lasting failure while staging): drops
-- its staging keys and the target's lock.
--
-- KEYS:
--   merge_state      the target's merge state hash
--   staging          the merge's staging stream
--   staging_dedup    its staging dedup hash
--   staging_remap    its staging remap hash
--   staging_engagement  its staged engagement state (merge_stage_engagement)
--   profile          the target's profile hash
-- ARGV:
--   merge_id         the merge
-- Returns: 1 when given up, 0 when the swap happened after all (the merge goes on).
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':swapped') == 1 then return 0 end
redis.call('UNLINK', K.staging, K.staging_dedup, K.staging_remap, K.staging_engagement)
if redis.call('HGET', K.profile, 'merge_lock') == P.merge_id then
  redis.call('HDEL', K.profile, 'merge_lock')
end
return 1
