-- engagement_journey_stats: CaseService.GetJourneyStats' reads, per stage of the tenant's
-- journey: its open cases (a ZLEXCOUNT of its range of the open-case index), the entry times
-- of the middle one or two of them (a ZRANGE BYLEX with LIMIT: the median time in stage), its
-- latest completed stays (the ring of os_journey_leave) and its counters. Its cost grows with
-- the number of stages, not of cases.
--
-- KEYS:
--   journey_stages         the tenant's journey stages
--   journey_counters       the tenant's journey counters per stage
--   journey_open           the tenant's open cases per stage (os_journey)
--   journey_stays          the tenant's completed stays per stage (os_journey)
-- ARGV:
-- Flags: no-writes
-- Returns: per stage {stage, open cases, the middle entry times (ms)..., '|', completed stays
--     (ms, in no order)..., '|', entered, repeat contacts, channel switches}; {} without a
--     journey.
-- Errors: none.
local s = redis.call('GET', K.journey_stages)
if not s then return {} end
local out = {}
for st in string.gmatch(s, '[^\n]+') do
  local lo, hi = os_journey_range(st)
  local n = redis.call('ZLEXCOUNT', K.journey_open, lo, hi)
  local row = {st, n}
  if n > 0 then
    local first = math.floor((n - 1) / 2)
    local mid = redis.call('ZRANGE', K.journey_open, lo, hi, 'BYLEX', 'LIMIT', first,
                           math.floor(n / 2) - first + 1)
    for _, m in ipairs(mid) do
      row[#row + 1] = string.sub(m, #st + 2, #st + 16)  -- "<stage>|<entered, 15 digits>|..."
    end
  end
  row[#row + 1] = '|'
  local kept = math.min(tonumber(redis.call('HGET', K.journey_stays, st .. ':n') or '0'),
                        os_journey_stays_kept)
  if kept > 0 then
    local fields = {}
    for i = 0, kept - 1 do fields[#fields + 1] = st .. ':' .. i end
    for _, d in ipairs(redis.call('HMGET', K.journey_stays, unpack(fields))) do
      if d then row[#row + 1] = d end
    end
  end
  row[#row + 1] = '|'
  local c = redis.call('HMGET', K.journey_counters, st .. ':entered', st .. ':repeats',
                       st .. ':switches')
  for i = 1, 3 do row[#row + 1] = c[i] or '0' end
  out[#out + 1] = row
end
return out
