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
--   t=jo a case entered a stage: add m to the journey's open-case index
--   t=jl a case left stage g after ms: remove m from the open-case index, record the stay
--   t=jr remove m from the open-case index, no stay (a merge moves a case to another customer:
--        jr of its old member, jo of its new one; m may name another customer than the outbox's)
--   t=da a promise is due at sc ms: add (or move) m in the due-promise index
--   t=dr forget the promise m in the due-promise index
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

local function os_outbox_journey_enter(p, ob, member)
  os_outbox_add(p, ob, 't', 'jo', 'm', member)
end

local function os_outbox_journey_leave(p, ob, member, stage, ms)
  os_outbox_add(p, ob, 't', 'jl', 'm', member, 'g', stage, 'ms', ms)
end

local function os_outbox_journey_remove(p, ob, member)
  os_outbox_add(p, ob, 't', 'jr', 'm', member)
end

local function os_outbox_due(p, ob, member, due_ms)
  os_outbox_add(p, ob, 't', 'da', 'm', member, 'sc', due_ms)
end

local function os_outbox_undue(p, ob, member)
  os_outbox_add(p, ob, 't', 'dr', 'm', member)
end

local function os_outbox_active(p, ob, now)
  os_outbox_add(p, ob, 't', 'x', 'at', now)
end
