-- identity_update_profile: applies an UpdateProfile's changes to the profile hash, all or none.
--
-- KEYS:
--   profile              the customer's profile hash
--   identifiers          its identifiers hash (returned)
-- ARGV:
--   customer_id          the customer's id (for the guard's errors)
--   now_ms:int           the new updated_at
--   max_attributes:int   attr: fields a profile has at most after the change
--   ops...               (op, field, value) triples: 'set' field value | 'del' field '' |
--                        'clr' '' '' (removes every attr: field there was before)
-- Returns: {profile (HGETALL), identifiers (HGETALL)} after the change.
-- Errors: OS_INVALID profile.attributes (more than max_attributes after the change: nothing
--     written); the guard's: OS_NOT_FOUND, OS_MOVED, OS_BUSY (see os_guard).
local err = os_guard(K.profile, P.customer_id, true)
if err then return err end
-- The attribute count after the change, checked before anything is written.
local attrs, count, original = {}, 0, {}
local all = redis.call('HGETALL', K.profile)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 5) == 'attr:' then
    attrs[all[i]] = true
    original[#original + 1] = all[i]
    count = count + 1
  end
end
local ops = P.ops
for i = 1, #ops, 3 do
  local op, f = ops[i], ops[i + 1]
  if op == 'clr' then
    for k in pairs(attrs) do attrs[k] = nil end
    count = 0
  elseif op == 'set' and string.sub(f, 1, 5) == 'attr:' and not attrs[f] then
    attrs[f] = true
    count = count + 1
  elseif op == 'del' and attrs[f] then
    attrs[f] = nil
    count = count - 1
  end
end
if count > P.max_attributes then
  return redis.error_reply('OS_INVALID profile.attributes: at most ' .. P.max_attributes ..
                           ' entries')
end
for i = 1, #ops, 3 do
  local op, f, v = ops[i], ops[i + 1], ops[i + 2]
  if op == 'clr' then
    if #original > 0 then redis.call('HDEL', K.profile, unpack(original)) end
  elseif op == 'set' then
    redis.call('HSET', K.profile, f, v)
  elseif op == 'del' then
    redis.call('HDEL', K.profile, f)
  end
end
redis.call('HSET', K.profile, 'updated_at', P.now_ms)
return {redis.call('HGETALL', K.profile), redis.call('HGETALL', K.identifiers)}
