-- engagement_journey_upgrade: folds one key of the journey layout an earlier version wrote into
-- the tenant's open-case index and stays ring (os_journey), then deletes it; run once per old
-- key at start-up (engagement::UpgradeJourneyKeys). The old key is gone afterwards, so a second
-- run finds nothing to do; entries already in the new layout are kept.
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
-- Returns: the number of entries folded (0 when the old key is gone).
-- Errors: OS_INVALID kind.
local folded = 0
if P.kind == 'open' then
  local all = redis.call('ZRANGE', K.old, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    local customer, case_id = string.match(all[i], '^([^|]+)|(.+)$')
    if customer then
      redis.call('ZADD', K.journey_open, 0,
                 os_journey_member(P.stage, tonumber(all[i + 1]), customer, case_id))
      folded = folded + 1
    end
  end
elseif P.kind == 'dur' then
  -- Oldest first: the stays the old list holds, then those recorded in the ring since.
  local stays = {}
  local old = redis.call('LRANGE', K.old, 0, -1)
  for i = #old, 1, -1 do stays[#stays + 1] = old[i] end
  folded = #old
  local n = tonumber(redis.call('HGET', K.journey_stays, P.stage .. ':n') or '0')
  local kept = math.min(n, os_journey_stays_kept)
  for j = n - kept, n - 1 do
    stays[#stays + 1] = redis.call('HGET', K.journey_stays,
                                   P.stage .. ':' .. (j % os_journey_stays_kept))
  end
  -- The ring as os_journey_leave would have left it after recording them all in that order.
  local total = n + #old
  local from = math.max(1, #stays - os_journey_stays_kept + 1)
  for i = from, #stays do
    local j = total - #stays + i - 1
    redis.call('HSET', K.journey_stays, P.stage .. ':' .. (j % os_journey_stays_kept), stays[i])
  end
  if #old > 0 then redis.call('HSET', K.journey_stays, P.stage .. ':n', total) end
else
  return redis.error_reply('OS_INVALID kind: "' .. P.kind .. '" is neither open nor dur')
end
redis.call('DEL', K.old)
return folded
