-- merge_stage_remap: carries one chunk of the remap entries of earlier merges forward to the
-- new stream ids, in the merge's staging remap hash. An entry this merge staged itself (a
-- position in its own source) wins over an older one carried forward (after an unmerge and a
-- new merge of the same pair): HSETNX.
--
-- KEYS:
--   staging_remap    the merge's staging remap hash
--   merge_state      the target's merge state hash
-- ARGV:
--   merge_id         the merge
--   pairs...         (old id or "<customer>|<old id>", new id) pairs
-- Returns: 1, or -1 when the merge has swapped already (nothing written).
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':swapped') == 1 then return -1 end
for i = 1, #P.pairs, 2 do redis.call('HSETNX', K.staging_remap, P.pairs[i], P.pairs[i + 1]) end
return 1
