-- outbox_due: applies one customer's due-promise entries (t=da, dr: libs/outbox/lua/
-- write.lua) to the due-promise index, in outbox order, each entry once (the last sequence
-- number applied per customer is kept, as outbox_journey does).
--
-- KEYS:
--   due_promises       promises by due time, across tenants ("<tenant>|<customer>|<case>")
--   applied            "<tenant>|<customer>" -> the sequence number of its last entry applied
--   applied_at         "<tenant>|<customer>" -> when it was applied (ms)
-- ARGV:
--   owner              "<tenant>|<customer>", whose outbox the entries are from
--   now_ms:int         now, in ms
--   kept_ms:int        how long an owner's mark is kept
--   entries...         per entry, in outbox order, 4 values: its sequence number (s), its kind
--                      (t), the member (m), the due time in ms (sc; '' for dr)
-- Returns: the number of entries applied.
-- Errors: none.
local last = os_applied_last(K.applied, P.owner)
local applied = 0
for b = 1, #P.entries, 4 do
  local seq, kind, member = tonumber(P.entries[b]), P.entries[b + 1], P.entries[b + 2]
  if seq > last then
    if kind == 'da' then
      redis.call('ZADD', K.due_promises, P.entries[b + 3], member)
    elseif kind == 'dr' then
      redis.call('ZREM', K.due_promises, member)
    end
    last = seq
    applied = applied + 1
  end
end
os_applied_save(K.applied, K.applied_at, P.owner, last, applied, P.now_ms, P.kept_ms)
return applied
