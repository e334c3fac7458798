-- privacy_redact_records: the copies of a redacted event's text kept in records beside the
-- timeline: the case's last note and promise text (the update that wrote them names itself in
-- le / pte; older records are matched by their text), its resolution, the conversation's
-- outcome, and the values of facts it stated (ev, and pe for a previous value). A copy the new
-- text no longer holds is replaced by the new body (a note) or cleared.
--
-- KEYS:
--   cases                 the customer's cases hash
--   facts                 its facts hash
--   conversation_records  its conversation records hash
-- ARGV:
--   event_id              the event redacted
--   what                  what the event stated: 'note' (a case update), 'resolution',
--                         'outcome' or ''
--   case_id               its case id ('' when none)
--   conversation_id       its conversation id ('' when none)
--   old_summary           the event's summary before
--   old_body              its body before
--   new_summary           its new summary
--   new_body              its new body
-- Returns: how many records changed.
-- Errors: none of its own.
local eid, what = P.event_id, P.what
local old_sum, old_body, new_sum, new_body = P.old_summary, P.old_body, P.new_summary, P.new_body
local function has(text, part) return string.find(text, part, 1, true) ~= nil end
local n = 0
if P.case_id ~= '' and (what == 'note' or what == 'resolution') then
  local rec = redis.call('HGET', K.cases, P.case_id)
  if rec then
    local c = cjson.decode(rec)
    local changed = false
    if what == 'note' then
      if type(c.ln) == 'string' and c.ln ~= '' and c.ln ~= new_body and
         (c.le == eid or (c.le == nil and c.ln == old_body)) then
        c.ln = new_body
        changed = true
      end
      if type(c.pt) == 'string' and c.pt ~= '' and not has(new_sum, c.pt) and
         (c.pte == eid or (c.pte == nil and has(old_sum, 'promise "' .. c.pt .. '"'))) then
        c.pt = ''
        changed = true
      end
    elseif type(c.rn) == 'string' and c.rn ~= '' and not has(new_sum, c.rn) then
      c.rn = ''
      changed = true
    end
    if changed then
      redis.call('HSET', K.cases, P.case_id, cjson.encode(c))
      n = n + 1
    end
  end
end
if P.conversation_id ~= '' and what == 'outcome' then
  local rec = redis.call('HGET', K.conversation_records, P.conversation_id)
  if rec then
    local r = cjson.decode(rec)
    if type(r.oc) == 'string' and r.oc ~= '' and not has(new_sum, r.oc) then
      r.oc = ''
      redis.call('HSET', K.conversation_records, P.conversation_id, cjson.encode(r))
      n = n + 1
    end
  end
end
local all = redis.call('HGETALL', K.facts)
for i = 1, #all, 2 do
  local f = cjson.decode(all[i + 1])
  local changed = false
  if f.ev == eid and f.v ~= '' then f.v = ''; changed = true end
  if f.pe == eid and f.pv ~= '' then f.pv = ''; changed = true end
  if changed then
    redis.call('HSET', K.facts, all[i], cjson.encode(f))
    n = n + 1
  end
end
return n
