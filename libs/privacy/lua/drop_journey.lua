-- privacy_drop_journey: the erased customers' entries in the tenant's open-case journey index
-- (libs/engagement/lua/journey.lua), for the cases one of them holds. An entry names the
-- customer its case was with when it entered its stage (a merge moves it), so each case's
-- entry is removed under every erased customer's name; an entry not there costs nothing.
--
-- KEYS:
--   cases          one erased customer's cases hash (a record has sg = stage, se = entered ms)
--   journey_open   the tenant's open-case index (keys::TenantKeys::journey_open)
-- ARGV:
--   erased...      the erased customers
-- Returns: how many entries went.
-- Errors: none of its own.
local n = 0
local all = redis.call('HGETALL', K.cases)
for i = 1, #all, 2 do
  local ok, c = pcall(cjson.decode, all[i + 1])
  if ok and type(c) == 'table' and type(c.sg) == 'string' and c.sg ~= '' and
     tonumber(c.se) then
    for _, id in ipairs(P.erased) do
      n = n + redis.call('ZREM', K.journey_open,
                         os_journey_member(c.sg, tonumber(c.se), id, all[i]))
    end
  end
end
return n
