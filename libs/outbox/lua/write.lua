-- os_outbox_* (helper): the one writer of a customer's outbox entries (libs/outbox/README.md;
-- libs/outbox/outbox.cc is their one reader). A function that changes a customer writes the
-- effects on tenant-wide keys here, in the customer's slot and atomically with the change;
-- libs/outbox applies them in the tenant keys' own slots afterwards, each exactly once.
--
-- An entry of the outbox stream (keys::CustomerKeys::outbox) is one effect, field t its kind:
--   t=a  raise an alert: id (raised once per id), k AlertKind number, ca case id, msg, at ms
--   t=n  add 1 to the journey counter f ("<stage>:<what>")
--   t=x  the customer was active at `at` ms (the retention activity index)

local function os_outbox_alert(ob, id, kind, case_id, message, now)
  redis.call('XADD', ob, '*', 't', 'a', 'id', id, 'k', kind, 'ca', case_id, 'msg', message,
             'at', now)
end

local function os_outbox_count(ob, field)
  redis.call('XADD', ob, '*', 't', 'n', 'f', field)
end

local function os_outbox_active(ob, now)
  redis.call('XADD', ob, '*', 't', 'x', 'at', now)
end
