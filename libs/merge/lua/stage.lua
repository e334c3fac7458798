-- merge_stage: writes one chunk of a merge's plan (the rebuilt timeline) to its staging stream,
-- with its dedup and remap hashes beside the live ones, so the swap only renames. Entries at or
-- below the staging stream's newest are there already (two drivers of one merge, a retry and
-- the recovery pass, may write the same plan at once) and are skipped.
--
-- KEYS:
--   staging          the merge's staging stream (on the target's hash tag)
--   merge_state      the target's merge state hash
--   staging_dedup    the staging dedup hash (event id -> new stream id)
--   staging_remap    the staging remap hash (old stream id -> new stream id)
-- ARGV:
--   merge_id         the merge
--   entries...       per entry, 6 values: new stream id, blob, merge tags ('' for none),
--                    appended ms ('' for none), event id, remap key ('' for none)
-- Returns: 1, or -1 when the merge has swapped already (nothing written).
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.merge_id .. ':swapped') == 1 then return -1 end
local top = redis.call('XREVRANGE', K.staging, '+', '-', 'COUNT', 1)
local top_ms, top_seq = -1, -1
if #top > 0 then
  local ms, seq = string.match(top[1][1], '^(%d+)-(%d+)$')
  top_ms, top_seq = tonumber(ms), tonumber(seq)
end
local e = P.entries
for i = 1, #e, 6 do
  local ms, seq = string.match(e[i], '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq)
  if ms > top_ms or (ms == top_ms and seq > top_seq) then
    local fields = {'e', e[i + 1]}
    if e[i + 2] ~= '' then fields[#fields + 1] = 'm'; fields[#fields + 1] = e[i + 2] end
    if e[i + 3] ~= '' then fields[#fields + 1] = 'a'; fields[#fields + 1] = e[i + 3] end
    redis.call('XADD', K.staging, e[i], unpack(fields))
    redis.call('HSET', K.staging_dedup, e[i + 4], e[i])
    if e[i + 5] ~= '' then redis.call('HSET', K.staging_remap, e[i + 5], e[i]) end
  end
end
return 1
