-- context_get: everything GetContext shows of one customer but older events, in one round trip.
--
-- KEYS:
--   profile               the profile hash (the guard reads it; act:<channel> fields too)
--   identifiers           the identifiers hash
--   timeline              the timeline stream
--   conversations         conversation id -> "<first ms>|<last ms>|<events>|<channel>"
--   conversation_records  conversation id -> its record (libs/engagement/records.h)
--   cases                 case id -> its record
--   facts                 fact key -> its record
--   contacts              contact id -> ms (a zset)
--   contact_channels      channel -> latest contact ms (a zset)
--   signals               sentiment counts per day, streak, the latest repeat contact
-- ARGV:
--   customer_id           the customer's id (for the guard's errors)
--   recent:int            how many of the latest events to read
--   now_ms:int            the end of the 7- and 30-day windows
-- Flags: no-writes
-- Returns: {profile (HGETALL), identifiers (HGETALL), the latest `recent` events (newest
--     first), conversations (HGETALL), timeline length, the records of those conversations (in
--     their order, '' for none), cases open or resolved within 30 days (id, record, ...),
--     facts (HGETALL), contacts in 7 days, contacts in 30 days, channels in 30 days,
--     signals (HGETALL)}
-- Errors: OS_NOT_FOUND (no such customer, or erased), OS_MOVED (merged): see os_guard.
local err = os_guard(K.profile, P.customer_id, false)
if err then return err end
local now, day = P.now_ms, 86400000
local cv = redis.call('HGETALL', K.conversations)
local records = {}
for i = 1, #cv, 2 do
  records[#records + 1] = redis.call('HGET', K.conversation_records, cv[i]) or ''
end
local cases = {}
local all = redis.call('HGETALL', K.cases)
for i = 1, #all, 2 do
  -- Open cases, and resolved ones a repeat-contact flag may still name.
  if string.find(all[i + 1], '"s":"o"', 1, true) or
     tonumber(string.match(all[i + 1], '"rs":(%d+)') or '0') > now - 30 * day then
    cases[#cases + 1] = all[i]
    cases[#cases + 1] = all[i + 1]
  end
end
return {redis.call('HGETALL', K.profile), redis.call('HGETALL', K.identifiers),
        redis.call('XREVRANGE', K.timeline, '+', '-', 'COUNT', P.recent), cv,
        redis.call('XLEN', K.timeline), records, cases, redis.call('HGETALL', K.facts),
        redis.call('ZCOUNT', K.contacts, now - 7 * day, '+inf'),
        redis.call('ZCOUNT', K.contacts, now - 30 * day, '+inf'),
        redis.call('ZCOUNT', K.contact_channels, now - 30 * day, '+inf'),
        redis.call('HGETALL', K.signals)}
