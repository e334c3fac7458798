-- os_facts (helper): facts ("already told us"), written by engagement_conversation_handoff and
-- engagement_conversation_facts. A request's facts are a list argument, os_fact_fields values
-- per fact in the order engagement's AppendFactArgs writes them: type, name, value, expires ms
-- (0: never), due ms (0: none), case id, conversation id, visibility. The stored record is
-- described in case.lua. Uses os_effects' K.fa, K.ca and P.cid, P.now.

local os_fact_fields = 8

-- nil when the facts (list f) may be written, else the error reply (checked before anything
-- changes): every case they name exists, and the customer keeps at most `max` current facts.
-- `field` names the request's list of facts in errors ("facts", "collected").
local function os_check_facts(f, field, max)
  for i = 0, #f / os_fact_fields - 1 do
    local ca = f[i * os_fact_fields + 6]
    if ca ~= '' and redis.call('HEXISTS', K.ca, ca) == 0 then
      return redis.error_reply('OS_NOT_FOUND ' .. field .. '[' .. i .. '].case_id: customer ' ..
                               P.cid .. ' has no case ' .. ca)
    end
  end
  local live = {}
  local count = 0
  local all = redis.call('HGETALL', K.fa)
  for i = 1, #all, 2 do
    local x = cjson.decode(all[i + 1])
    if x.ex == 0 or x.ex > P.now then live[all[i]] = true; count = count + 1 end
  end
  for b = 1, #f, os_fact_fields do
    local key = f[b] .. ':' .. f[b + 1]
    if not live[key] then live[key] = true; count = count + 1 end
  end
  if count > max then
    return redis.error_reply('OS_LIMIT ' .. field .. ': customer ' .. P.cid .. ' would have ' ..
                             count .. ' current facts; at most ' .. max ..
                             ' (expired facts do not count)')
  end
  return nil
end

-- Writes (supersedes) the facts; returns their stored JSON, in order. Expired facts are dropped.
-- Each fact names the event that stated its value (ev) and the one that stated its previous
-- value (pe): a redaction of that event clears the value (libs/privacy).
local function os_write_facts(f, who_t, who_i, ch, conv, eid)
  local all = redis.call('HGETALL', K.fa)
  for i = 1, #all, 2 do
    local x = cjson.decode(all[i + 1])
    if x.ex ~= 0 and x.ex <= P.now then redis.call('HDEL', K.fa, all[i]) end
  end
  local stored = {}
  for b = 1, #f, os_fact_fields do
    local key = f[b] .. ':' .. f[b + 1]
    local x = {t = tonumber(f[b]), n = f[b + 1], v = f[b + 2], ex = tonumber(f[b + 3]),
               du = tonumber(f[b + 4]), ca = f[b + 5], cv = f[b + 6], vi = tonumber(f[b + 7]),
               rt = who_t, ri = who_i, ch = ch, ra = P.now, fa = P.now, ts = 1, pv = '',
               ev = eid, pe = ''}
    if x.cv == '' then x.cv = conv end
    local old = redis.call('HGET', K.fa, key)
    if old then
      old = cjson.decode(old)
      x.fa = old.fa
      x.ts = old.ts + 1
      x.mg = old.mg  -- a fact a merge brought goes back with an Unmerge, restated or not
      if old.v ~= x.v then
        x.pv, x.pe = old.v, old.ev or ''
      else
        x.pv, x.pe = old.pv, old.pe or ''
      end
    end
    stored[#stored + 1] = cjson.encode(x)
    redis.call('HSET', K.fa, key, stored[#stored])
  end
  return stored
end

-- The current JSON of the facts named in list f (for a retry's answer).
local function os_read_facts(f)
  local out = {}
  for b = 1, #f, os_fact_fields do
    out[#out + 1] = redis.call('HGET', K.fa, f[b] .. ':' .. f[b + 1]) or ''
  end
  return out
end

local function os_no_conversation(conv)
  return redis.error_reply('OS_NOT_FOUND conversation_id: customer ' .. P.cid ..
                           ' has no conversation ' .. conv)
end
