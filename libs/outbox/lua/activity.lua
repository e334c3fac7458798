-- outbox_activity: applies a customer's latest activity (t=x, libs/outbox/lua/write.lua) to the
-- activity index of its bucket (keys::TenantKeys::activity), a later time only (ZADD GT), so a
-- replay changes nothing. A bucket's index that does not exist yet is not created until the
-- caller has added the tenant to the tenant registry (keys::TenantRegistryKey, another slot):
-- the retention Sweeper finds every index through the registry, and a crash between the two
-- leaves at worst a registered tenant with no index.
--
-- KEYS:
--   activity           the bucket's activity index (customer id -> latest activity ms)
-- ARGV:
--   customer_id        the customer
--   at:int             its latest activity, in ms
--   registered:int     1 when the caller has added the tenant to the registry
-- Returns: 1 when applied, 0 when the index does not exist and registered is 0 (the caller
--   registers the tenant, then calls again with registered 1).
-- Errors: none.
if P.registered == 0 and redis.call('EXISTS', K.activity) == 0 then return 0 end
redis.call('ZADD', K.activity, 'GT', P.at, P.customer_id)
return 1
