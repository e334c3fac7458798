-- os_redact_step (helper): one step of a redaction's copy (libs/privacy/redaction.cc), the part
-- privacy_redact_chunk and privacy_redact_swap share.
--
--   local answer, n, bytes, caught = os_redact_step(K, P, write)
--   if answer then return answer end
--
-- K: profile, timeline, staging, dedup, redaction, merge_state; P: customer_id, token,
-- event_id, blob, max_entries, max_bytes, largest_entry, root (1 for the customer whose
-- timeline holds the event: it is guarded, `write` as os_guard takes it). `answer` is the reply
-- to return at once: a guard's error, or {'stale'|'swapped', 0, 0}. Else the next entries after
-- the progress kept in the redaction hash are copied (os_copy_after) and the progress saved:
-- n entries, `bytes` bytes, `caught` when the timeline's end was reached.

-- Copies the entries of stream `src` after id `from` into `dst` with their own ids, the entry
-- `sid` with its event replaced by `blob`: at most `max_n` entries and `max_b` bytes of fields
-- and values plus one entry (a batch is never larger than the bytes left allow for entries of
-- `big` bytes). Returns entries, bytes, the last id copied, and whether src's end was reached.
local function os_copy_after(src, dst, from, sid, blob, max_n, max_b, big)
  local n, bytes, last = 0, 0, from
  while n < max_n and bytes < max_b do
    local c = math.floor((max_b - bytes) / big)
    if c < 1 then c = 1 end
    if c > max_n - n then c = max_n - n end
    if c > 64 then c = 64 end
    local batch = redis.call('XRANGE', src, '(' .. last, '+', 'COUNT', c)
    for _, e in ipairs(batch) do
      local f = e[2]
      for j = 1, #f, 2 do
        if e[1] == sid and f[j] == 'e' then f[j + 1] = blob end
        bytes = bytes + #f[j] + #f[j + 1]
      end
      redis.call('XADD', dst, e[1], unpack(f))
      n = n + 1
      last = e[1]
    end
    if #batch < c then return n, bytes, last, true end
  end
  return n, bytes, last, false
end

-- The copy's progress in hash `rd` for redaction `tok` (tokens sort in the order redactions
-- began): 'stale' when this redaction is over (its record is gone, or a newer one has been
-- here), 'swapped' when this stream is done, else the last id copied. A redaction that finds
-- another one's copy starts over.
local function os_progress(rd, staging, mg, tok, root)
  local p = redis.call('HMGET', rd, 'ptok', 'copied', 'swapped', 'tok')
  if root and p[4] ~= tok then return 'stale' end
  if p[3] then
    if p[3] == tok then return 'swapped' end
    if p[3] > tok then return 'stale' end
  end
  if p[1] and p[1] > tok then return 'stale' end
  if p[1] ~= tok then
    redis.call('UNLINK', staging)
    redis.call('HSET', rd, 'ptok', tok, 'copied', '0-0', 'mgn', redis.call('HLEN', mg))
    return '0-0'
  end
  return p[2]
end

local function os_redact_step(k, p, write)
  local root = p.root == 1
  if root then
    local err = os_guard(k.profile, p.customer_id, write)
    if err then return err end
  end
  local from = os_progress(k.redaction, k.staging, k.merge_state, p.token, root)
  if from == 'stale' or from == 'swapped' then return {from, 0, 0} end
  local sid = redis.call('HGET', k.dedup, p.event_id) or ''
  local n, bytes, last, caught = os_copy_after(k.timeline, k.staging, from, sid, p.blob,
                                               p.max_entries, p.max_bytes, p.largest_entry)
  if last ~= from then redis.call('HSET', k.redaction, 'copied', last) end
  return nil, n, bytes, caught
end
