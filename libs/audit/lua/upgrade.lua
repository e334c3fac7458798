-- audit_upgrade: entries of a tenant's audit log before buckets (one stream per tenant) moved
-- into one bucket (UpgradeAuditKeys, libs/audit/audit_upgrade.h, then deletes them from the old
-- stream). An entry keeps its stream id when the bucket holds only older ones (the usual case:
-- the old log is moved oldest first into empty buckets), and is then moved once however often
-- this runs; an entry older than what the bucket holds already (written by this version before
-- the move) gets a new id.
--
-- KEYS:
--   log              the bucket's audit log stream (keys::TenantKeys::audit_log)
-- ARGV:
--   entries...       per entry: its old stream id, its customer id ('' for none), the
--                    serialized v1::AuditEntry
-- Returns: how many entries were written (not held under their id already).
-- Errors: none of its own.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms) or 0, tonumber(seq) or 0
end
local n = 0
for i = 1, #P.entries, 3 do
  local sid = P.entries[i]
  if #redis.call('XRANGE', K.log, sid, sid) == 0 then
    local id = sid
    local last = redis.call('XREVRANGE', K.log, '+', '-', 'COUNT', 1)
    if #last > 0 then
      local lm, ls = parse(last[1][1])
      local m, s = parse(sid)
      if lm > m or (lm == m and ls >= s) then id = '*' end
    end
    redis.call('XADD', K.log, id, 'c', P.entries[i + 1], 'e', P.entries[i + 2])
    n = n + 1
  end
end
return n
