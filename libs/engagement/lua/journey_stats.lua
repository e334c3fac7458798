-- engagement_journey_stats: CaseService.GetJourneyStats' reads of one bucket of the tenant's
-- journey (keys::TenantKeys(tenant, bucket)), per stage: its open cases in the bucket (a
-- ZLEXCOUNT of its range of the open-case index), the earliest and latest entry times among
-- them, all their entry times when there are at most `listed` of them, its latest completed
-- stays recorded in the bucket (the ring of outbox_journey) and its counters. The caller reads
-- every bucket and merges them (libs/engagement/case_store.cc); the exact median entry time of
-- a stage's open cases across buckets is then found with engagement_journey_rank. Its cost
-- grows with the number of stages, not of cases.
--
-- KEYS:
--   journey_counters       the bucket's journey counters per stage
--   journey_open           the bucket's open cases per stage (os_journey)
--   journey_stays          the bucket's completed stays per stage (os_journey)
-- ARGV:
--   listed:int             a stage's entry times are listed when it has at most this many
--                          open cases in the bucket
--   stages...              the tenant's stages (its journey, read by the caller)
-- Flags: no-writes
-- Returns: per stage {open cases, earliest entry (ms; '' with none), latest entry, entry
--     times (ms; only when open cases <= listed)..., '|', completed stays (ms, in no
--     order)..., '|', entered, repeat contacts, channel switches}.
-- Errors: none.
local out = {}
for _, st in ipairs(P.stages) do
  local lo, hi = os_journey_range(st)
  local n = redis.call('ZLEXCOUNT', K.journey_open, lo, hi)
  local row = {n}
  local function entered(m) return string.sub(m, #st + 2, #st + 16) end
  if n > 0 then
    local first = redis.call('ZRANGE', K.journey_open, lo, hi, 'BYLEX', 'LIMIT', 0, 1)
    local last = redis.call('ZRANGE', K.journey_open, hi, lo, 'BYLEX', 'REV', 'LIMIT', 0, 1)
    row[2], row[3] = entered(first[1]), entered(last[1])
    if n <= P.listed then
      for _, m in ipairs(redis.call('ZRANGE', K.journey_open, lo, hi, 'BYLEX')) do
        row[#row + 1] = entered(m)
      end
    end
  else
    row[2], row[3] = '', ''
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
