-- engagement_journey_upgrade: folds one key of the journey layout an earlier version wrote into
-- the tenant's open-case index and stays ring (os_journey); run at start-up
-- (engagement::UpgradeJourneyKeys) until it answers that nothing remains. An open-case key is
-- folded at most max members per call, each chunk taken from the old key in the step that adds
-- it to the index, so an upgrade stopped between two calls goes on where it stopped and folds
-- nothing twice; a stays key in one call (the ring keeps os_journey_stays_kept stays, so no
-- more are read). The old key is gone once all is folded, so a later run finds nothing to do;
-- entries already in the new layout are kept.
--
-- KEYS:
--   old                    "<journey prefix>open:<stage>" (a zset of "<customer>|<case>" scored
--                          by the ms the case entered the stage) or "<journey prefix>dur:<stage>"
--                          (a list of completed stays in ms, newest first)
--   journey_open           the tenant's open cases per stage (os_journey)
--   journey_stays          the tenant's completed stays per stage (os_journey)
-- ARGV:
--   stage                  the stage the old key is of
--   kind                   'open' or 'dur': which of the two it is
--   max:int                open: members folded per call at most (engagement::kUpgradeChunk)
-- Returns: {entries folded by this call (0 when the old key is gone), more (0|1): 1 when the
--     old key still holds entries (call again)}.
-- Errors: OS_INVALID kind; OS_INVALID max (below 1).
if P.kind == 'open' then
  if P.max < 1 then
    return redis.error_reply('OS_INVALID max: ' .. P.max .. ' members per call; at least 1')
  end
  local folded = 0
  local chunk = redis.call('ZRANGE', K.old, 0, P.max - 1, 'WITHSCORES')
  local taken = {}
  for i = 1, #chunk, 2 do
    taken[#taken + 1] = chunk[i]
    -- A member that does not parse is dropped, as the whole old key is in the end.
    local customer, case_id = string.match(chunk[i], '^([^|]+)|(.+)$')
    if customer then
      redis.call('ZADD', K.journey_open, 0,
                 os_journey_member(P.stage, tonumber(chunk[i + 1]), customer, case_id))
      folded = folded + 1
    end
  end
  if #taken > 0 then redis.call('ZREM', K.old, unpack(taken)) end
  return {folded, redis.call('EXISTS', K.old)}
elseif P.kind == 'dur' then
  -- Oldest first: the stays the old list holds, then those recorded in the ring since. Only the
  -- newest os_journey_stays_kept of the list can stay in the ring; the rest only count.
  local len = redis.call('LLEN', K.old)
  local stays = {}
  local old = redis.call('LRANGE', K.old, 0, os_journey_stays_kept - 1)
  for i = #old, 1, -1 do stays[#stays + 1] = old[i] end
  local n = tonumber(redis.call('HGET', K.journey_stays, P.stage .. ':n') or '0')
  local kept = math.min(n, os_journey_stays_kept)
  for j = n - kept, n - 1 do
    stays[#stays + 1] = redis.call('HGET', K.journey_stays,
                                   P.stage .. ':' .. (j % os_journey_stays_kept))
  end
  -- The ring as os_journey_leave would have left it after recording them all in that order.
  local total = n + len
  local from = math.max(1, #stays - os_journey_stays_kept + 1)
  for i = from, #stays do
    local j = total - #stays + i - 1
    redis.call('HSET', K.journey_stays, P.stage .. ':' .. (j % os_journey_stays_kept), stays[i])
  end
  if len > 0 then redis.call('HSET', K.journey_stays, P.stage .. ':n', total) end
  -- The earlier version kept at most 1,000 stays per list (LTRIM), so this DEL is short.
  redis.call('DEL', K.old)
  return {len, 0}
end
return redis.error_reply('OS_INVALID kind: "' .. P.kind .. '" is neither open nor dur')
