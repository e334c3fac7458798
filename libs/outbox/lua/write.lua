-- os_outbox_* (helper): the one writer of a customer's outbox entries (libs/outbox/README.md;
-- libs/outbox/outbox.cc is their one reader). A function that changes a customer writes the
-- effects on tenant-wide keys here, in the customer's slot and atomically with the change;
-- libs/outbox applies them in the tenant keys' own slots afterwards, each exactly once.
--
-- An entry of the outbox stream (keys::CustomerKeys::outbox) is one effect: s its sequence
-- number (the profile's counter 'obs': it grows across outboxes deleted once drained, so
-- "applied up to s" never mistakes a new entry for an old one), t its kind:
--   t=a  raise an alert: id (raised once per id), k AlertKind number, ca case id, msg, at ms
--   t=n  add 1 to the journey counter f ("<stage>:<what>")
--   t=x  the customer was active at `at` ms (the retention activity index)
-- p is the customer's profile hash, ob its outbox.

local function os_outbox_add(p, ob, ...)
  redis.call('XADD', ob, '*', 's', redis.call('HINCRBY', p, 'obs', 1), ...)
end

local function os_outbox_alert(p, ob, id, kind, case_id, message, now)
  os_outbox_add(p, ob, 't', 'a', 'id', id, 'k', kind, 'ca', case_id, 'msg', message, 'at', now)
end

local function os_outbox_count(p, ob, field)
  os_outbox_add(p, ob, 't', 'n', 'f', field)
end

local function os_outbox_active(p, ob, now)
  os_outbox_add(p, ob, 't', 'x', 'at', now)
end
