-- engagement_journey_rank: GetJourneyStats' narrowing reads of one bucket of the tenant's
-- open-case index (os_journey), to find the exact median entry time of a stage's open cases
-- across buckets (libs/engagement/case_store.cc): how many of a stage's cases entered at or
-- before each of some times, or the entry times within a range. Each count is one ZLEXCOUNT:
-- a stage's members sort by entry time ("<stage>|<entered ms, 15 digits>|...").
--
-- KEYS:
--   journey_open           the bucket's open cases per stage
-- ARGV:
--   queries...             each "n:<stage>:" (count the stage's open cases), "c:<stage>:<t1>,
--                          <t2>,..." (count those that entered at or before each t, ms) or
--                          "f:<stage>:<lo>:<hi>:<limit>" (the entry times t with lo < t <= hi,
--                          at most limit, oldest first; lo -1: from the first)
-- Flags: no-writes
-- Returns: per query, in order, the counts or the entry times (ms, 15 digits).
-- Errors: OS_INVALID queries (a query that does not parse).
local function bound(st, t)  -- the exclusive lex bound just after entry time t
  return string.format('(%s|%015d', st, t + 1)
end
local out = {}
for _, q in ipairs(P.queries) do
  local kind, st, rest = string.match(q, '^([ncf]):([a-z0-9_-]+):(.*)$')
  if not kind then return redis.error_reply('OS_INVALID queries: "' .. q .. '"') end
  local lo = '[' .. st .. '|'
  local row = {}
  if kind == 'n' then
    row[1] = redis.call('ZLEXCOUNT', K.journey_open, os_journey_range(st))
  elseif kind == 'c' then
    for t in string.gmatch(rest, '[^,]+') do
      row[#row + 1] = redis.call('ZLEXCOUNT', K.journey_open, lo, bound(st, tonumber(t)))
    end
  else
    local a, b, limit = string.match(rest, '^(-?%d+):(%d+):(%d+)$')
    if not a then return redis.error_reply('OS_INVALID queries: "' .. q .. '"') end
    local from = tonumber(a) < 0 and lo or string.format('[%s|%015d', st, tonumber(a) + 1)
    for _, m in ipairs(redis.call('ZRANGE', K.journey_open, from, bound(st, tonumber(b)),
                                  'BYLEX', 'LIMIT', 0, tonumber(limit))) do
      row[#row + 1] = string.sub(m, #st + 2, #st + 16)
    end
  end
  out[#out + 1] = row
end
return out
