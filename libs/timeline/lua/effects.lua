-- os_append (helper, libs/timeline/event_effects.h): what storing an event does to the rest of
-- the customer's state, for every function that appends (timeline_append, and the conversation
-- and case functions of libs/engagement/lua), so an event has the same effects whichever way it
-- arrives.
--
--   os_effects(keys, args)           binds K and P (below) for the call; first, once per call
--   local out, err = os_append(evs)  evs: a list of os_event_at(list, b)
--
-- K, the keys (short names; libs/engagement/lua/case.lua binds them from long ones): p profile,
-- tl timeline, dd dedup, cv conversations, ids identifiers, cs conversation records, ca cases, fa facts,
-- ct contacts, cc contact channels, sg signals, ob outbox, jst journey stages,
-- jo, jd the journey's open cases and stays (journey.lua), due due promises, nf the notify
-- channel (a shard channel: SPUBLISH, so it is a key of the function, in the customer's slot).
-- P, the arguments: cid customer id, now (ms), tag (merge chain), via
-- (identifiers-hash field), window (repeat window ms), arepeat, astreak (alert thresholds),
-- maxev, maxage (retention limits, 0: none); os_append sets P.rep to the repeat flag of a new
-- contact. A helper reads only the fields it uses.
--
-- Alerts, the journey counters of contacts and the activity index are tenant-wide: they go to
-- the customer's outbox (libs/outbox/lua/write.lua), so every function here touches the
-- customer's slot only.

-- The current call's keys and arguments: every call sets them (os_effects) before it uses any
-- helper of this file, so nothing of one call is seen by the next.
local K, P = nil, nil
local function os_effects(keys, args)
  K = keys
  P = args
end
local DAY = 86400000
-- f as a function that computes f(v) once per value v and keeps it (a table of the call's
-- library, kept between calls): for values of an enum only, so the table stays small.
local function os_memo(f)
  local kept = {}
  return function(v)
    local r = kept[v]
    if r == nil then
      r = f(v)
      kept[v] = r
    end
    return r
  end
end
-- A channel's profile field of latest activity ('act:<channel>'): concatenating a number formats
-- it with sprintf, once per channel here instead of once per event.
local os_act_field = os_memo(function(ch) return 'act:' .. ch end)
-- How often an append may rewrite the tenant's activity index (retention's inactive_after is days).
local os_activity_every_ms = 60000

-- Raises an alert once (libs/outbox applies it: an id the log already holds is ignored).
local function os_raise_alert(id, kind, case_id, message)
  os_outbox_alert(K.p, K.ob, id, kind, case_id, message, P.now)
end

local function os_case_get(id)
  local v = redis.call('HGET', K.ca, id)
  if v then return cjson.decode(v) end
  return nil
end
local function os_case_put(id, c) redis.call('HSET', K.ca, id, cjson.encode(c)) end

local function os_stage_count(stage, what)
  if stage ~= '' then os_outbox_count(K.p, K.ob, stage .. ':' .. what) end
end
-- A contact on channel `ch` about a case: counts a channel switch when the case's previous
-- contact was on another channel.
local function os_case_channel(c, ch)
  if c.lc ~= 0 and c.lc ~= ch then
    c.sw = c.sw + 1
    os_stage_count(c.sg, 'switches')
  end
  c.lc = ch
end

-- The case a contact is about: the named one, else the open case updated last, else the case
-- resolved last within the repeat window. Returns id, case or nil.
local function os_contact_case(case_id)
  if case_id ~= '' then
    local c = os_case_get(case_id)
    if c and (c.s == 'o' or c.rs >= P.now - P.window) then return case_id, c end
    return nil
  end
  local best, best_id, best_t = nil, nil, -1
  local all = redis.call('HGETALL', K.ca)
  for i = 1, #all, 2 do
    local c = cjson.decode(all[i + 1])
    local t = nil
    if c.s == 'o' then
      t = 1e15 + c.up
    elseif c.rs >= P.now - P.window then
      t = c.rs
    end
    if t and t > best_t then best, best_id, best_t = c, all[i], t end
  end
  return best_id, best
end

-- A new contact: conversation `conv` on channel `ch` (a number) at `occ` ms. Returns the repeat
-- flag {ca, tp, n, o, cv, at} when it is about a case contacted before, and the case id.
local function os_contact(conv, ch, occ, case_id)
  local cutoff = P.now - 30 * DAY
  redis.call('ZADD', K.ct, occ, conv)
  local prev = tonumber(redis.call('ZSCORE', K.cc, ch) or '-1')
  if occ > prev then redis.call('ZADD', K.cc, occ, ch) end
  redis.call('ZREMRANGEBYSCORE', K.ct, '-inf', '(' .. cutoff)
  redis.call('ZREMRANGEBYSCORE', K.cc, '-inf', '(' .. cutoff)
  local id, c = os_contact_case(case_id)
  if not c then return nil, '' end
  c.nc = c.nc + 1
  c.rc = c.rc + 1
  os_case_channel(c, ch)
  os_stage_count(c.sg, 'repeats')
  local recent = {}
  for _, t in ipairs(c.rct) do
    if t >= P.now - 7 * DAY then recent[#recent + 1] = t end
  end
  recent[#recent + 1] = occ
  c.rct = recent
  os_case_put(id, c)
  local r = {ca = id, tp = c.tp, n = c.nc, o = (c.s == 'o'), cv = conv, at = occ}
  redis.call('HSET', K.sg, 'repeat', cjson.encode(r))
  if #recent >= P.arepeat then
    os_raise_alert('repeat_contact:' .. P.cid .. ':' .. id, 2, id,
                   string.format('customer %s contacted us %d times in 7 days about "%s"',
                                 P.cid, #recent, c.tp))
  end
  return r, id
end

-- Sentiment of the event stored at `sid`: per day counts for 30 days, and the negative streak.
local function os_sentiment(s, occ, sid, case_id)
  if s == '' then return end
  s = tonumber(s)
  local day = math.floor(occ / DAY)
  local field = nil
  if s >= 0.25 then field = 'p:' .. day elseif s <= -0.25 then field = 'n:' .. day end
  if field and redis.call('HINCRBY', K.sg, field, 1) == 1 then
    -- A new day: forget days past the window.
    local oldest = math.floor(P.now / DAY) - 30
    local all = redis.call('HKEYS', K.sg)
    for _, f in ipairs(all) do
      local d = tonumber(string.match(f, '^[pn]:(%-?%d+)$') or 'x')
      if d and d < oldest then redis.call('HDEL', K.sg, f) end
    end
  end
  if s <= -0.25 then
    local streak = redis.call('HINCRBY', K.sg, 'streak', 1)
    if streak == P.astreak then
      os_raise_alert('negative_streak:' .. P.cid .. ':' .. sid, 3, case_id,
                     string.format('customer %s had %d negative interactions in a row',
                                   P.cid, streak))
    end
  else
    redis.call('HSET', K.sg, 'streak', 0)
  end
end

-- Stores events: each {eid, blob, ch, kind, occ, conv, sent, case} (ch and kind as numbers,
-- occ in ms). Returns a flat list, three values per event: its stream id, 1 if duplicate else
-- 0, the stored blob if duplicate else '' (out[3i - 2], out[3i - 1], out[3i] for event i; flat,
-- because Redis converts every nested table of a reply separately); or nil and an error reply.
-- Sets P.rep to the repeat flag of a new contact, if any.
-- Redis runs this for every append, so it reads and writes each hash field once per call, not
-- once per event (tools/bench.py reports its time per call next to a bare XADD's).
local function os_append(evs)
  local first_act = os_act_field(evs[1].ch)
  local pf = redis.call('HMGET', K.p, 'created_at', first_act, 'merged_into', 'merge_lock',
                        'consent:' .. evs[1].ch, 'ix')
  if not pf[1] or pf[3] or pf[4] then return nil, os_guard(K.p, P.cid, true) end
  -- Consent (libs/privacy/README.md): no event on a channel whose consent is DENIED (2).
  local consent = {[evs[1].ch] = pf[5] or false}
  for _, e in ipairs(evs) do
    if consent[e.ch] == nil then
      consent[e.ch] = redis.call('HGET', K.p, 'consent:' .. e.ch) or false
    end
    if consent[e.ch] and string.sub(consent[e.ch], 1, 2) == '2:' then
      local names = {'WEB_CHAT', 'CHATBOT', 'VOICE', 'SMS', 'EMAIL', 'MOBILE_APP', 'WEB',
                     'IN_STORE', 'SOCIAL'}
      return nil, redis.error_reply('OS_CONFLICT consent withdrawn for channel CHANNEL_' ..
                                    (names[e.ch] or tostring(e.ch)))
    end
  end
  local tag = P.tag
  if tag == '' and P.via ~= '' then
    local ev = redis.call('HGET', K.ids, P.via)
    if ev then tag = string.match(ev, '^v2|[^|]*|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|') or '' end
  end
  local out = {}
  for i, e in ipairs(evs) do
    local sid = redis.call('HGET', K.dd, e.eid)
    if sid then
      local x = redis.call('XRANGE', K.tl, sid, sid)
      local blob = ''
      if #x > 0 then blob = x[1][2][2] end
      out[3 * i - 2], out[3 * i - 1], out[3 * i] = sid, 1, blob
    end
  end
  -- act: latest occurred_at per channel; convs: open conversation state, false once ended.
  local acts = {[first_act] = tonumber(pf[2] or '-1')}
  local act_changed = {}
  local convs = {}
  local last, last_blob, added_events = nil, nil, 0
  for i, e in ipairs(evs) do
    if not out[3 * i - 2] then
      local sid
      if tag ~= '' then
        sid = redis.call('XADD', K.tl, '*', 'e', e.blob, 'm', tag)
      else
        sid = redis.call('XADD', K.tl, '*', 'e', e.blob)
      end
      redis.call('HSET', K.dd, e.eid, sid)
      local act = os_act_field(e.ch)
      if acts[act] == nil then acts[act] = tonumber(redis.call('HGET', K.p, act) or '-1') end
      if e.occ > acts[act] then acts[act] = e.occ; act_changed[act] = true end
      local conv = e.conv
      if conv ~= '' then
        local ending = e.kind == 3 or e.kind == 12
        -- false: the conversation has ended (an event after its end does not reopen it).
        local c = convs[conv]
        if c == nil then
          -- "<first ms>|<last ms>|<events>|<channel of the latest>"
          local stored = redis.call('HGET', K.cv, conv)
          if stored then
            local f, l, k, h = string.match(stored, '^(%-?%d+)|(%-?%d+)|(%d+)|(%d+)$')
            c = {f = tonumber(f), l = tonumber(l), n = tonumber(k), c = h}
          else
            local rec = redis.call('HGET', K.cs, conv)
            if not rec then
              -- First seen: a new contact.
              local rep, case_id = os_contact(conv, e.ch, e.occ, e.case)
              if rep then P.rep = rep end
              rec = {ch = e.ch, bt = 0, bi = '', s = 'o', ca = case_id, st = e.occ, en = 0,
                     h = 0, oc = '', wc = '', rp = rep ~= nil}
              if case_id == '' then rec.ca = e.case end
              redis.call('HSET', K.cs, conv, cjson.encode(rec))
            elseif cjson.decode(rec).s == 'e' then
              c = false
            end
          end
        end
        if ending then
          convs[conv] = false
          local r = redis.call('HGET', K.cs, conv)
          if r then
            r = cjson.decode(r)
            if r.s == 'o' then
              r.s = 'e'
              r.en = e.occ
              redis.call('HSET', K.cs, conv, cjson.encode(r))
            end
          end
        elseif c == false then
          convs[conv] = false
        else
          if not c then c = {f = e.occ, l = e.occ, n = 0, c = e.ch} end
          if e.occ >= c.l then c.l = e.occ; c.c = e.ch end
          if e.occ < c.f then c.f = e.occ end
          c.n = c.n + 1
          convs[conv] = c
        end
      end
      os_sentiment(e.sent, e.occ, sid, e.case)
      out[3 * i - 2], out[3 * i - 1], out[3 * i] = sid, 0, ''
      last = sid
      last_blob = e.blob
      added_events = added_events + 1
    end
  end
  if last then
    -- Profile fields, in one HSET: the latest activity per channel, and when the activity index
    -- was last written ("ix", below).
    local fields = {}
    for act in pairs(act_changed) do
      fields[#fields + 1] = act
      fields[#fields + 1] = acts[act]
    end
    local added = 0
    for conv, c in pairs(convs) do
      if c then
        added = added + redis.call('HSET', K.cv, conv,
                                   string.format('%d|%d|%d|%s', c.f, c.l, c.n, c.c))
      else
        redis.call('HDEL', K.cv, conv)
      end
    end
    -- Prune conversations idle past a day, only when one was added to a long list; and ended
    -- conversation records older than 30 days, every 32nd record past 64 (so a customer with
    -- many recent conversations does not pay a scan per new one).
    if added > 0 and redis.call('HLEN', K.cv) > 32 then
      local all = redis.call('HGETALL', K.cv)
      local cutoff = P.now - DAY
      for i = 1, #all, 2 do
        local l = tonumber(string.match(all[i + 1], '^%-?%d+|(%-?%d+)|'))
        if l < cutoff then redis.call('HDEL', K.cv, all[i]) end
      end
    end
    local records = added > 0 and redis.call('HLEN', K.cs) or 0
    if records > 64 and records % 32 == 0 then
      local all = redis.call('HGETALL', K.cs)
      for i = 1, #all, 2 do
        local r = cjson.decode(all[i + 1])
        if r.s == 'e' and r.en < P.now - 30 * DAY then redis.call('HDEL', K.cs, all[i]) end
      end
    end
    -- Retention (libs/retention): the oldest events past the tenant's limits go (at most 200
    -- per call, retention::kTrimPerAppend), and the customer's latest activity is indexed for
    -- the Sweeper.
    os_trim(K.tl, K.dd, P.now, P.maxage, P.maxev, 200)
    -- The activity index is written at most once a minute per customer: it measures inactivity
    -- in days, and a write per append would be a command per append for nothing.
    if P.now - tonumber(pf[6] or '0') >= os_activity_every_ms then
      os_outbox_active(K.p, K.ob, P.now)
      fields[#fields + 1] = 'ix'
      fields[#fields + 1] = P.now
    end
    if #fields > 0 then redis.call('HSET', K.p, unpack(fields)) end
    -- Watchers (timeline::WatchHub): one new event is published whole, so a watcher that is
    -- caught up sends it without reading it back (timeline::PublishedEntry); else its id.
    if added_events == 1 and #last_blob <= 65536 then
      redis.call('SPUBLISH', K.nf, last .. '\n' .. last_blob)
    else
      redis.call('SPUBLISH', K.nf, last)
    end
  end
  return out
end

-- The arguments of one event, stored by os_append, from list `t` starting at t[b]: event_id,
-- blob, channel, kind, occurred_at ms, conversation_id, sentiment ('' when none), case_id, in
-- the order timeline::AppendEventArgs writes them (os_event_fields of them per event).
local os_event_fields = 8
-- A channel's or kind's number from its argument, converted once per value (tonumber runs
-- strtod twice on a string). Wrapped: a library's globals are not readable while it loads.
local os_enum = os_memo(function(s) return tonumber(s) end)
local function os_event_at(t, b)
  return {eid = t[b], blob = t[b + 1], ch = os_enum(t[b + 2]), kind = os_enum(t[b + 3]),
          occ = tonumber(t[b + 4]), conv = t[b + 5], sent = t[b + 6], case = t[b + 7]}
end
