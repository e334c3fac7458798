-- os_merge_engagement / os_unmerge_engagement (helper): the engagement state (libs/engagement)
-- of a merge's two customers follows the merge (merge_swap) and comes back with an Unmerge
-- (merge_remove).
--
--   os_merge_engagement(K, merge_id, source, target, tenant)
--   os_unmerge_engagement(K, merge_id, source, target, tenant)
--
-- K is the calling function's keys table; it must hold merge_state (the target's merge state
-- hash: the contact channels the merge raised are kept there), the source's and the target's
-- engagement keys (source_conversation_records, source_cases, source_facts, source_contacts,
-- source_contact_channels, source_signals, and the same with target_), due_promises (the
-- tenant-wide due-promise index) and journey_open (the tenant's open-case index, moved with
-- os_journey_move, libs/engagement/lua/journey.lua).
--
-- Records that came from the source (conversation records, cases, facts) carry the merge chain
-- in "mg", so an Unmerge gives them back (as they are then: changes made while merged go back
-- with them). The target's own record wins when both have one id.

-- The (source hash, target hash, is cases) triples of the records that follow a merge.
local function os_merge_records(K)
  return {{K.source_conversation_records, K.target_conversation_records, false},
          {K.source_cases, K.target_cases, true},
          {K.source_facts, K.target_facts, false}}
end

-- Case `id`, record `c`, now belongs to customer `to` instead of `from`: its journey index
-- entry and its due promise move with it.
local function os_move_case(K, c, id, from, to, tenant)
  os_journey_move(id, c, from, to)
  local d = redis.call('ZSCORE', K.due_promises, tenant .. '|' .. from .. '|' .. id)
  if d then
    redis.call('ZREM', K.due_promises, tenant .. '|' .. from .. '|' .. id)
    redis.call('ZADD', K.due_promises, d, tenant .. '|' .. to .. '|' .. id)
  end
end

local function os_merge_engagement(K, mid, src, tgt, tenant)
  os_effects({jo = K.journey_open}, {})
  for _, h in ipairs(os_merge_records(K)) do
    local all = redis.call('HGETALL', h[1])
    for i = 1, #all, 2 do
      if redis.call('HEXISTS', h[2], all[i]) == 0 then
        local r = cjson.decode(all[i + 1])
        if r.mg then r.mg = r.mg .. ',' .. mid else r.mg = mid end
        redis.call('HSET', h[2], all[i], cjson.encode(r))
        if h[3] then os_move_case(K, r, all[i], src, tgt, tenant) end
      end
    end
  end
  local ct = redis.call('ZRANGE', K.source_contacts, 0, -1, 'WITHSCORES')
  for i = 1, #ct, 2 do redis.call('ZADD', K.target_contacts, 'NX', ct[i + 1], ct[i]) end
  -- Contact channels: remember what the merge raised ("<channel>|<before or ''>|<after>"), so
  -- an Unmerge can lower it again.
  local cc = redis.call('ZRANGE', K.source_contact_channels, 0, -1, 'WITHSCORES')
  local raised = {}
  for i = 1, #cc, 2 do
    local before = redis.call('ZSCORE', K.target_contact_channels, cc[i])
    if not before or tonumber(before) < tonumber(cc[i + 1]) then
      redis.call('ZADD', K.target_contact_channels, cc[i + 1], cc[i])
      raised[#raised + 1] = cc[i] .. '|' .. (before or '') .. '|' .. cc[i + 1]
    end
  end
  redis.call('HSET', K.merge_state, mid .. ':cc', table.concat(raised, '\n'))
  local sg = redis.call('HGETALL', K.source_signals)
  for i = 1, #sg, 2 do
    if string.match(sg[i], '^[pn]:') then
      redis.call('HINCRBY', K.target_signals, sg[i], sg[i + 1])
    end
  end
end

local function os_unmerge_engagement(K, mid, src, tgt, tenant)
  os_effects({jo = K.journey_open}, {})
  for _, h in ipairs(os_merge_records(K)) do
    local all = redis.call('HGETALL', h[2])
    for i = 1, #all, 2 do
      local r = cjson.decode(all[i + 1])
      if r.mg then
        local rest, last = string.match(r.mg, '^(.*),([^,]*)$')
        if not last then rest, last = nil, r.mg end
        if last == mid then
          r.mg = rest
          redis.call('HSET', h[1], all[i], cjson.encode(r))
          redis.call('HDEL', h[2], all[i])
          if h[3] then os_move_case(K, r, all[i], tgt, src, tenant) end
        end
      end
    end
  end
  local ct = redis.call('ZRANGE', K.source_contacts, 0, -1)
  for _, m in ipairs(ct) do redis.call('ZREM', K.target_contacts, m) end
  -- A channel the merge raised goes back, unless a later contact raised it again.
  local raised = redis.call('HGET', K.merge_state, mid .. ':cc') or ''
  for line in string.gmatch(raised, '[^\n]+') do
    local ch, before, after = string.match(line, '^([^|]*)|([^|]*)|([^|]*)$')
    if ch and redis.call('ZSCORE', K.target_contact_channels, ch) == after then
      if before == '' then
        redis.call('ZREM', K.target_contact_channels, ch)
      else
        redis.call('ZADD', K.target_contact_channels, before, ch)
      end
    end
  end
  local sg = redis.call('HGETALL', K.source_signals)
  for i = 1, #sg, 2 do
    if string.match(sg[i], '^[pn]:') and redis.call('HEXISTS', K.target_signals, sg[i]) == 1 then
      if redis.call('HINCRBY', K.target_signals, sg[i], -tonumber(sg[i + 1])) <= 0 then
        redis.call('HDEL', K.target_signals, sg[i])
      end
    end
  end
end
