-- engagement_journey_set: CaseService.SetJourney: the tenant's stages, in journey order.
-- Refuses to drop a stage that still has open cases (its range of the open-case index,
-- os_journey_range, is not empty).
--
-- KEYS:
--   journey_stages         the tenant's journey stages ("a\nb\nc")
--   journey_open           the tenant's open cases per stage (os_journey)
-- ARGV:
--   stages...              the new stages (validated: [a-z0-9_-])
-- Returns: 1.
-- Errors: OS_CONFLICT stages (a dropped stage has open cases).
local old = redis.call('GET', K.journey_stages)
local keep = {}
for _, st in ipairs(P.stages) do keep[st] = true end
if old then
  for st in string.gmatch(old, '[^\n]+') do
    if not keep[st] then
      local n = redis.call('ZLEXCOUNT', K.journey_open, os_journey_range(st))
      if n > 0 then
        return redis.error_reply('OS_CONFLICT stages: stage "' .. st .. '" still has ' .. n ..
                                 ' open cases; move or resolve them before removing it')
      end
    end
  end
end
redis.call('SET', K.journey_stages, table.concat(P.stages, '\n'))
return 1
