-- os_rebuild (helper): a stream rebuilt entry by entry with its own ids, in one call (the
-- erase's alert log, libs/privacy/erase.cc), so entries left out are gone from memory, not
-- only marked deleted as XDEL leaves them.
--
--   local dropped = os_rebuild(src, tmp, edit)
--     every entry of stream `src` is copied with its own id to `tmp`, which gets src's last id,
--     entries-added and max-deleted id and is renamed over it. `edit(id, fields)` returns the
--     fields to write for the entry, or nil to leave it out. Returns the entries left out.
--   local last, added, maxdel = os_stream_ids(key)
--     a stream's last-generated-id, entries-added and max-deleted-entry-id (XINFO STREAM).
--   os_id_less(a, b)   stream id a sorts before b

local function os_id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

local function os_stream_ids(key)
  local info = redis.call('XINFO', 'STREAM', key)
  local last, added, maxdel = '0-0', 0, '0-0'
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1]
    elseif info[i] == 'entries-added' then added = info[i + 1]
    elseif info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
  end
  return last, added, maxdel
end

local function os_rebuild(src, tmp, edit)
  redis.call('DEL', tmp)
  if redis.call('EXISTS', src) == 0 then return 0 end
  local last, added, maxdel = os_stream_ids(src)
  local start, kept, dropped = '-', 0, 0
  while true do
    local batch = redis.call('XRANGE', src, start, '+', 'COUNT', 1000)
    for _, e in ipairs(batch) do
      local f = edit(e[1], e[2])
      if f then
        redis.call('XADD', tmp, e[1], unpack(f))
        kept = kept + 1
      else
        dropped = dropped + 1
        if os_id_less(maxdel, e[1]) then maxdel = e[1] end
      end
    end
    if #batch < 1000 then break end
    start = '(' .. batch[#batch][1]
  end
  if kept == 0 then
    -- An emptied stream keeps its last id: add an entry at it and delete it.
    redis.call('XADD', tmp, last, 'x', '')
    redis.call('XDEL', tmp, last)
  end
  redis.call('XSETID', tmp, last, 'ENTRIESADDED', added, 'MAXDELETEDID', maxdel)
  redis.call('RENAME', tmp, src)
  return dropped
end
