-- os_case (helper): what the case, conversation and alert functions of libs/engagement share,
-- after os_effects (libs/timeline/lua/effects.lua) and os_journey (journey.lua).
--
--   local E = os_engagement(K, P)  binds os_effects' K and P from the function's named keys and
--                                  arguments (the names below); first, once per call. Returns
--                                  the bound P (os_append sets E.rep)
--   os_event_named(P)              the function's event (its ev_* arguments) for os_append
--   local E, ev, err = os_engagement_begin(K, P)
--                                  the opening of every function that writes a customer's
--                                  event: os_engagement, then os_guard (err: its reply, to
--                                  return as it is), then os_event_named
--   os_pb_int, os_pb_str           a protobuf field appended to a serialized event
--   os_done_before(eid, record)    the answer to a retry
--   os_journey_stages()            the tenant's stages (nil: no journey), from the argument
--                                  stages (CaseStore reads them first: another slot)
--   os_check_stage(stage)          nil when a case may be in `stage`, else the error reply
--   os_due_member(tenant, id)      a case's member of the due-promise index
--   os_no_case(id)                 the NOT_FOUND reply for a case the customer does not have
--
-- Names of the keys: profile, timeline, dedup, conversations, identifiers,
-- conversation_records, cases, facts, contacts, contact_channels, signals, outbox,
-- notify_channel (as timeline_append and keys::CustomerKeys / TenantKeys name them); of the
-- arguments: customer_id, now_ms, tag, via, repeat_window_ms, stages,
-- alert_repeat_contacts, alert_negative_streak, max_events, max_age_ms, and the event ev_id,
-- ev_blob, ev_channel, ev_kind, ev_occurred_ms, ev_conversation, ev_sentiment, ev_case
-- (engagement::SetEffects and SetEvent in libs/engagement/customer_script.h fill them).
-- A function declares only those it uses.
--
-- The records (JSON in hashes, written here with cjson, read back by libs/engagement/records.cc,
-- the one C++ parser; libs/engagement/records.h refers here). Times are ms since the epoch,
-- 0 for none; an actor is "<x>t" (Actor.Type number, 0: none) and "<x>i" (its id).
--
-- A case (cases hash, field = case id):
--   tp topic; sg stage ('' none); se when it entered sg; s 'o' open / 'r' resolved;
--   ot, oi owner; op opened; up updated; rs resolved; rn resolution;
--   pt promise text, pb promised_by (0: no promise), pm made at, mt, mi made by, pte the event
--   that stated pt; uc updates so far, pu uc when the promise was made (overdue only while
--   uc == pu); nc contacts, rc repeat contacts, sw channel switches, lc last contact's channel,
--   rct contact times of the last 7 days; oh owner history, the latest max_owner_history of
--   {ft, fi from, tt, ti to, r reason, bt, bi by, at}, ohn owner changes in all;
--   ln last note, lv its visibility (Audience), le the event that stated it.
-- A conversation (conversation_records hash, field = conversation id):
--   ch channel; bt, bi served by; s 'o' open / 'e' ended; ca case id; st started; en ended;
--   h handoffs; oc outcome; wc wrap-up code; rp a repeat contact.
-- A fact (facts hash, field = "<type>:<name>"):
--   t FactType, n name, v value, ex expires (0: never), du due, ca case, cv conversation,
--   vi visibility, rt, ri recorded by, ch channel, ra recorded at, fa first recorded at,
--   ts times stated, pv previous value, ev the event that stated v, pe the one that stated pv,
--   mg the merge that brought it (libs/merge).
-- The repeat flag (signals hash, field 'repeat'): ca case, tp topic, n contacts, o case open,
--   cv conversation, at when.
-- An acknowledgement (alert acks hash, field = alert id): bt, bi by, at.

local function os_engagement(k, a)
  local bound = {cid = a.customer_id, now = a.now_ms, tag = a.tag,
                 via = a.via, window = a.repeat_window_ms, jst = a.stages,
                 arepeat = a.alert_repeat_contacts, astreak = a.alert_negative_streak,
                 maxev = a.max_events, maxage = a.max_age_ms}
  os_effects({p = k.profile, tl = k.timeline, dd = k.dedup, cv = k.conversations,
              ids = k.identifiers, cs = k.conversation_records, ca = k.cases, fa = k.facts,
              ct = k.contacts, cc = k.contact_channels, sg = k.signals, ob = k.outbox,
              nf = k.notify_channel},
             bound)
  return bound
end

local function os_event_named(a)
  return {eid = a.ev_id, blob = a.ev_blob, ch = a.ev_channel, kind = a.ev_kind,
          occ = a.ev_occurred_ms, conv = a.ev_conversation, sent = a.ev_sentiment,
          case = a.ev_case}
end

-- Nothing is read or written before os_guard has accepted the customer, so a refused call
-- changes nothing.
local function os_engagement_begin(k, a)
  local bound = os_engagement(k, a)
  local err = os_guard(k.profile, a.customer_id, true)
  if err then return nil, nil, err end
  return bound, os_event_named(a), nil
end

-- Protobuf wire format, to add a field to a serialized event (a field repeated later in the
-- bytes wins, so appending sets it).
local function os_varint(n)
  local s = ''
  while n >= 128 do
    s = s .. string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return s .. string.char(n)
end
local function os_pb_int(field, v) return os_varint(field * 8) .. os_varint(v) end
local function os_pb_str(field, v) return os_varint(field * 8 + 2) .. os_varint(#v) .. v end

-- For a call keyed by an event id (a retry): {1, record, stream id, stored blob} when the
-- timeline holds the event, else nil.
local function os_done_before(eid, record)
  local sid = redis.call('HGET', K.dd, eid)
  if not sid then return nil end
  local x = redis.call('XRANGE', K.tl, sid, sid)
  local blob = ''
  if #x > 0 then blob = x[1][2][2] end
  return {1, record or '', sid, blob}
end

local function os_journey_stages()
  local s = P.jst
  if not s or s == '' then return nil end
  local out = {}
  for st in string.gmatch(s, '[^\n]+') do out[#out + 1] = st end
  return out
end

local function os_check_stage(stage)
  local j = os_journey_stages()
  if not j then
    return redis.error_reply('OS_CONFLICT stage: the tenant has no journey; set one with ' ..
                             'CaseService.SetJourney or leave stage empty')
  end
  for _, s in ipairs(j) do
    if s == stage then return nil end
  end
  return redis.error_reply('OS_INVALID stage: "' .. stage .. '" is not a stage of the ' ..
                           "tenant's journey (" .. table.concat(j, ', ') .. ')')
end

-- A case's entry in the due-promise index names the customer the function runs for (a merge
-- target when the request named its source).
local function os_due_member(tenant, id) return tenant .. '|' .. P.cid .. '|' .. id end

local function os_no_case(id)
  return redis.error_reply('OS_NOT_FOUND case_id: customer ' .. P.cid .. ' has no case ' .. id)
end
