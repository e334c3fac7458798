-- os_merge_engagement / os_unmerge_restore / os_unmerge_engagement (helper): the engagement
-- state (libs/engagement) of a merge's source follows the merge and comes back with an
-- Unmerge. Each runs in one customer's slot, from what merge_stage_engagement copied into that
-- slot first (K.staging: "<part>|<name>" fields, libs/merge/lua/stage_engagement.lua):
--
--   os_merge_engagement(K, merge_id, source, target, tenant)  merge_swap, on the target: the
--                        source's records, contacts, contact channels and sentiment counts
--   os_unmerge_restore(K, merge_id, source, target, tenant)   merge_restore, on the source: the
--                        records that came with the merge, as they are now
--   os_unmerge_engagement(K, merge_id)                        merge_remove, on the target: those
--                        records, the source's contacts and counts, the raised channels go
--
-- K is the calling function's keys table: staging (the staging hash), merge_state (the
-- target's: the contact channels the merge raised are kept there), and the engagement keys of
-- the customer it runs for (conversation_records, cases, facts; on the target also contacts,
-- contact_channels, signals); the first two also profile and outbox.
--
-- Records that came from the source (conversation records, cases, facts) carry the merge chain
-- in "mg", so an Unmerge gives them back (as they are then: changes made while merged go back
-- with them). The target's own record wins when both have one id. An open case that changes
-- customer moves its tenant-wide entries through the outbox of the customer it moves to
-- (libs/outbox/lua/write.lua): its journey entry as jr of the old member and jo of the new
-- (os_journey_move), its due promise, when the due-promise index held it (staged as
-- du|<case>: the due time), as dr of the old member and da of the new.

-- The staging hash's record parts and the keys they go to.
local os_merge_parts = {{'cs', 'conversation_records'}, {'ca', 'cases'}, {'fa', 'facts'}}

-- The staging hash by part: part -> list of {name, value}; du is a map case id -> due ms.
local function os_merge_staged(K)
  local all = redis.call('HGETALL', K.staging)
  local by = {cs = {}, ca = {}, fa = {}, ct = {}, cc = {}, sg = {}, du = {}}
  for i = 1, #all, 2 do
    local part, name = string.match(all[i], '^(%a+)|(.*)$')
    if part == 'du' then
      by.du[name] = all[i + 1]
    elseif part and by[part] then
      local l = by[part]
      l[#l + 1] = {name, all[i + 1]}
    end
  end
  return by
end

-- The last merge of a record's chain ("m1,m2" -> "m2"), nil when none.
local function os_merge_last(mg)
  if not mg or mg == '' then return nil end
  return string.match(mg, '([^,]*)$')
end

-- Case `id`, record `c`, now belongs to customer `to` instead of `from`; `due` its promise's
-- due time in the index (nil: not there).
local function os_move_case(K, c, id, from, to, tenant, due)
  os_journey_move(K.profile, K.outbox, id, c, from, to)
  if due then
    os_outbox_undue(K.profile, K.outbox, tenant .. '|' .. from .. '|' .. id)
    os_outbox_due(K.profile, K.outbox, tenant .. '|' .. to .. '|' .. id, due)
  end
end

local function os_merge_engagement(K, mid, src, tgt, tenant)
  local st = os_merge_staged(K)
  for _, part in ipairs(os_merge_parts) do
    local key = K[part[2]]
    for _, f in ipairs(st[part[1]]) do
      if redis.call('HEXISTS', key, f[1]) == 0 then
        local r = cjson.decode(f[2])
        if r.mg then r.mg = r.mg .. ',' .. mid else r.mg = mid end
        redis.call('HSET', key, f[1], cjson.encode(r))
        if part[1] == 'ca' then os_move_case(K, r, f[1], src, tgt, tenant, st.du[f[1]]) end
      end
    end
  end
  for _, f in ipairs(st.ct) do redis.call('ZADD', K.contacts, 'NX', f[2], f[1]) end
  -- Contact channels: remember what the merge raised ("<channel>|<before or ''>|<after>"), so
  -- an Unmerge can lower it again.
  local raised = {}
  for _, f in ipairs(st.cc) do
    local before = redis.call('ZSCORE', K.contact_channels, f[1])
    if not before or tonumber(before) < tonumber(f[2]) then
      redis.call('ZADD', K.contact_channels, f[2], f[1])
      raised[#raised + 1] = f[1] .. '|' .. (before or '') .. '|' .. f[2]
    end
  end
  redis.call('HSET', K.merge_state, mid .. ':cc', table.concat(raised, '\n'))
  for _, f in ipairs(st.sg) do
    if string.match(f[1], '^[pn]:') then redis.call('HINCRBY', K.signals, f[1], f[2]) end
  end
  redis.call('UNLINK', K.staging)
end

local function os_unmerge_restore(K, mid, src, tgt, tenant)
  local st = os_merge_staged(K)
  for _, part in ipairs(os_merge_parts) do
    local key = K[part[2]]
    for _, f in ipairs(st[part[1]]) do
      local r = cjson.decode(f[2])
      if os_merge_last(r.mg) == mid then
        r.mg = string.match(r.mg, '^(.*),[^,]*$')  -- nil (dropped) when it was the only one
        redis.call('HSET', key, f[1], cjson.encode(r))
        if part[1] == 'ca' then os_move_case(K, r, f[1], tgt, src, tenant, st.du[f[1]]) end
      end
    end
  end
  redis.call('UNLINK', K.staging)
end

local function os_unmerge_engagement(K, mid)
  for _, part in ipairs(os_merge_parts) do
    local key = K[part[2]]
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      if os_merge_last(cjson.decode(all[i + 1]).mg) == mid then redis.call('HDEL', key, all[i]) end
    end
  end
  local st = os_merge_staged(K)
  for _, f in ipairs(st.ct) do redis.call('ZREM', K.contacts, f[1]) end
  -- A channel the merge raised goes back, unless a later contact raised it again.
  local raised = redis.call('HGET', K.merge_state, mid .. ':cc') or ''
  for line in string.gmatch(raised, '[^\n]+') do
    local ch, before, after = string.match(line, '^([^|]*)|([^|]*)|([^|]*)$')
    if ch and redis.call('ZSCORE', K.contact_channels, ch) == after then
      if before == '' then
        redis.call('ZREM', K.contact_channels, ch)
      else
        redis.call('ZADD', K.contact_channels, before, ch)
      end
    end
  end
  for _, f in ipairs(st.sg) do
    if string.match(f[1], '^[pn]:') and redis.call('HEXISTS', K.signals, f[1]) == 1 then
      if redis.call('HINCRBY', K.signals, f[1], -tonumber(f[2])) <= 0 then
        redis.call('HDEL', K.signals, f[1])
      end
    end
  end
  redis.call('UNLINK', K.staging)
end
