-- retention_forget: drops customers from a tenant's activity index, unless they appended since.
--
-- KEYS:
--   index          the tenant's activity index (customer id -> latest append ms)
-- ARGV:
--   members...     (customer id, score) pairs: the score the Sweeper saw; a customer whose
--                  score is higher now appended since and stays
-- Returns: how many customers it dropped.
-- Errors: none of its own.
local n = 0
for i = 1, #P.members, 2 do
  local s = redis.call('ZSCORE', K.index, P.members[i])
  if s and tonumber(s) <= tonumber(P.members[i + 1]) then
    n = n + redis.call('ZREM', K.index, P.members[i])
  end
end
return n
