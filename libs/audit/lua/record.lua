-- audit_record: appends one entry to one bucket of a tenant's audit log and trims that bucket
-- by count and by age in the same call (XADD takes only one of MAXLEN and MINID).
--
-- KEYS:
--   log              the bucket's audit log stream (keys::TenantKeys::audit_log)
-- ARGV:
--   max_entries      about this many newest entries of the bucket are kept (MAXLEN ~)
--   min_id           entries before this stream id (ms) go (MINID ~)
--   customer_id      the entry's customer ('' for none), beside it for List's filter
--   entry            the serialized v1::AuditEntry
-- Returns: the new entry's stream id.
-- Errors: none of its own (OOM when Redis is out of memory).
local id = redis.call('XADD', K.log, 'MAXLEN', '~', P.max_entries, '*', 'c', P.customer_id,
                      'e', P.entry)
redis.call('XTRIM', K.log, 'MINID', '~', P.min_id)
return id
