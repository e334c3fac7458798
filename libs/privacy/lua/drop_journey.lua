-- privacy_drop_journey: an erased customer's entries in its bucket of the tenant's open-case
-- journey index (libs/engagement/lua/journey.lua; keys::TenantKeys(tenant, TenantBucket(
-- customer))), for the cases the erased customers hold. An entry names the customer its case
-- was with when it entered its stage (a merge moves it), so the erase calls this once per erased
-- customer, with the cases of all of them; an entry not there costs nothing.
--
-- KEYS:
--   journey_open   the open-case index of the erased customer's bucket
-- ARGV:
--   customer       the erased customer whose entries go (the bucket's)
--   cases...       (case id, case record JSON) pairs, as the erased customers' cases hashes
--                  hold them (a record has sg = stage, se = entered ms)
-- Returns: how many entries went.
-- Errors: none of its own.
local n = 0
for i = 1, #P.cases, 2 do
  local ok, c = pcall(cjson.decode, P.cases[i + 1])
  if ok and type(c) == 'table' and type(c.sg) == 'string' and c.sg ~= '' and
     tonumber(c.se) then
    n = n + redis.call('ZREM', K.journey_open,
                       os_journey_member(c.sg, tonumber(c.se), P.customer, P.cases[i]))
  end
end
return n
