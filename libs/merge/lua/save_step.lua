-- merge_save_step: saves a merge record with the next step to run, unless another driver of the
-- same phase (a retry, the recovery pass) is already further on: a record never goes back.
--
-- KEYS:
--   record           the merge's record hash (keys::MergeKey)
-- ARGV:
--   rec              the serialized MergeRecord
--   step:int         the next step
--   phase            'merge' or 'unmerge'
--   now_ms:int       now, in ms (updated_at: the recovery pass leaves young records alone)
-- Returns: 1 when saved, 0 when another driver is further on.
-- Errors: none of its own.
local cur = redis.call('HMGET', K.record, 'step', 'phase')
if cur[1] and cur[2] == P.phase and tonumber(cur[1]) > P.step then return 0 end
redis.call('HSET', K.record, 'rec', P.rec, 'step', P.step, 'phase', P.phase, 'updated_at',
           P.now_ms)
return 1
