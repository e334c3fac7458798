-- audit_list: one page of one bucket of a tenant's audit log, newest first, optionally only
-- one customer's entries (libs/audit merges the buckets). It looks at 10,000 entries at most, so a filter that matches little cannot hold
-- Redis: a short page with more = 1 just means "keep going".
--
-- KEYS:
--   log              the bucket's audit log stream (keys::TenantKeys::audit_log)
-- ARGV:
--   start            '+' (the newest), or '(<id>' for before <id>
--   page_size:int    entries wanted
--   customer_id      only this customer's entries ('' for all)
-- Flags: no-writes
-- Returns: {more (0|1), the last stream id looked at, {{stream id, serialized entry}, ...}}.
-- Errors: none of its own.
local start, want, who = P.start, P.page_size, P.customer_id
-- Unfiltered, every entry read is listed: read no more than the page.
local step = (who == '' and want < 500) and want or 500
local out, last, scanned, more = {}, '', 0, 1
while true do
  local batch = redis.call('XREVRANGE', K.log, start, '-', 'COUNT', step)
  for _, e in ipairs(batch) do
    scanned = scanned + 1
    last = e[1]
    local f = e[2]
    local c, blob = '', ''
    for i = 1, #f, 2 do
      if f[i] == 'c' then c = f[i + 1] elseif f[i] == 'e' then blob = f[i + 1] end
    end
    if who == '' or c == who then
      out[#out + 1] = {e[1], blob}
      if #out >= want then break end
    end
  end
  if #out >= want or scanned >= 10000 then break end
  if #batch < step then more = 0 break end
  start = '(' .. last
end
if more == 1 and last ~= '' and
   #redis.call('XREVRANGE', K.log, '(' .. last, '-', 'COUNT', 1) == 0 then
  more = 0
end
return {more, last, out}
