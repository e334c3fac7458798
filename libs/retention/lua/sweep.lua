-- retention_sweep: trims one customer's timeline for the Sweeper, or only looks at it.
--
-- KEYS:
--   profile        the customer's profile hash
--   timeline       its timeline stream
--   dedup          its event id -> stream id hash
-- ARGV:
--   now_ms:int     the time max_age is measured back from
--   max_age:int    ms; 0: no age limit
--   max_events:int 0: no count limit (0 for both: only look, as before an expiry)
--   limit:int      events removed at most
-- Returns: {state, events removed}: state 0 a live customer, 1 no such customer, 2 merged into
--     another (its events went with the merge), 3 held by a merge in progress (not touched: the
--     merge is rebuilding its timeline).
-- Errors: none of its own.
local pf = redis.call('HMGET', K.profile, 'created_at', 'merged_into', 'merge_lock')
if pf[2] then return {2, 0} end
if not pf[1] then return {1, 0} end
if pf[3] then return {3, 0} end
return {0, os_trim(K.timeline, K.dedup, P.now_ms, P.max_age, P.max_events, P.limit)}
