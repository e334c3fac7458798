-- engagement_bucket_upgrade: moves one chunk of a key of the layout before buckets (one journey,
-- one activity index per tenant, one due-promise index) into its buckets, and removes what it
-- moved from the old key, in one call: run by engagement::UpgradeJourneyKeys, on a single Redis
-- only (its keys span slots; data in the old layout exists only there). An entry is moved only
-- while the old key still holds it with the value the caller read, so a call repeated after
-- an answer was lost moves nothing twice.
--
-- KEYS:
--   old                    the key being emptied
--   targets...             its buckets' keys of the same kind, bucket 0 first
-- ARGV:
--   kind                   how an entry is moved: 'zadd' (zset member, score), 'zadd_gt' (a
--                          later score only), 'zadd_nx' (kept when the bucket has it already),
--                          'hincr' (hash field, added to the bucket's), 'hmax' (hash field, the
--                          greater value kept), 'ring' (the completed stays of a stage: the old
--                          ring's stays go before those the bucket's ring holds, os_journey)
--   entries...             (bucket, member or field or stage, score or value ('' for ring))
--                          triples
-- Returns: the number of entries moved.
-- Errors: OS_INVALID kind.
local zset = {zadd = true, zadd_gt = true, zadd_nx = true}
local hash = {hincr = true, hmax = true}
if not zset[P.kind] and not hash[P.kind] and P.kind ~= 'ring' then
  return redis.error_reply('OS_INVALID kind: "' .. P.kind .. '"')
end
local moved = 0
for i = 1, #P.entries, 3 do
  local t = K.targets[tonumber(P.entries[i]) + 1]
  local m, v = P.entries[i + 1], P.entries[i + 2]
  if zset[P.kind] then
    local s = redis.call('ZSCORE', K.old, m)
    if s and tonumber(s) == tonumber(v) then
      if P.kind == 'zadd' then
        redis.call('ZADD', t, v, m)
      elseif P.kind == 'zadd_gt' then
        redis.call('ZADD', t, 'GT', v, m)
      else
        redis.call('ZADD', t, 'NX', v, m)
      end
      redis.call('ZREM', K.old, m)
      moved = moved + 1
    end
  elseif hash[P.kind] then
    if redis.call('HGET', K.old, m) == v then
      if P.kind == 'hincr' then
        redis.call('HINCRBY', t, m, v)
      elseif tonumber(v) > tonumber(redis.call('HGET', t, m) or '-1') then
        redis.call('HSET', t, m, v)
      end
      redis.call('HDEL', K.old, m)
      moved = moved + 1
    end
  else
    -- The old ring of stage m, oldest first, then the bucket's, recorded again in that order.
    local function ring(key)
      local n = tonumber(redis.call('HGET', key, m .. ':n') or '0')
      local out = {}
      for j = n - math.min(n, os_journey_stays_kept), n - 1 do
        local d = redis.call('HGET', key, m .. ':' .. (j % os_journey_stays_kept))
        if d then out[#out + 1] = d end
      end
      return n, out
    end
    local old_n, old = ring(K.old)
    if old_n > 0 then
      local new_n, new = ring(t)
      for _, d in ipairs(new) do old[#old + 1] = d end
      local total = old_n + new_n
      local from = math.max(1, #old - os_journey_stays_kept + 1)
      for k = from, #old do
        local j = total - #old + k - 1
        redis.call('HSET', t, m .. ':' .. (j % os_journey_stays_kept), old[k])
      end
      redis.call('HSET', t, m .. ':n', total)
      local fields = {m .. ':n'}
      for j = 0, os_journey_stays_kept - 1 do fields[#fields + 1] = m .. ':' .. j end
      for k = 1, #fields, 500 do
        redis.call('HDEL', K.old, unpack(fields, k, math.min(k + 499, #fields)))
      end
      moved = moved + 1
    end
  end
end
return moved
