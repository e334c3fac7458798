-- os_guard (helper): how every per-customer function follows a merge (libs/identity/merged.h).
--
--   local err = os_guard(profile_key, customer_id, write)
--   if err then return err end
--
-- Returns nil when the customer may be used, else the error reply to return:
--   OS_NOT_FOUND customer <id> not found      no profile
--   OS_NOT_FOUND customer <id> was erased     a tombstone (erased_at only, libs/privacy)
--   OS_MOVED moved:<target>:<merge id>:<target's stream head> customer <id> was merged into ...
--   OS_BUSY customer <id> is held by merge <id>; retry shortly   (only when `write`)
local function os_guard(profile_key, customer, write)
  local g = redis.call('HMGET', profile_key, 'created_at', 'merged_into', 'merge_lock',
                       'merge_id', 'merged_head')
  if not g[1] then
    -- An erased customer keeps a tombstone (erased_at only, libs/privacy): never reused.
    if redis.call('HEXISTS', profile_key, 'erased_at') == 1 then
      return redis.error_reply('OS_NOT_FOUND customer ' .. customer .. ' was erased')
    end
    return redis.error_reply('OS_NOT_FOUND customer ' .. customer .. ' not found')
  end
  if g[2] then
    return redis.error_reply('OS_MOVED moved:' .. g[2] .. ':' .. (g[4] or '') .. ':' ..
                             (g[5] or '0-0') .. ' customer ' .. customer ..
                             ' was merged into ' .. g[2])
  end
  if write and g[3] then
    return redis.error_reply('OS_BUSY customer ' .. customer .. ' is held by merge ' .. g[3] ..
                             '; retry shortly')
  end
  return nil
end
