-- privacy_read_customer: what an erase needs to know of one customer before it deletes
-- anything, read from keys only its last step deletes (so a rerun reads them again).
--
-- KEYS:
--   identifiers      the customer's identifiers hash
--   cases            its cases hash
--   merge_history    its merge history zset
--   merge_state      its merge state hash
--   timeline         its timeline stream
--   erased_profile   its profile as it was before the tombstone
-- ARGV: none
-- Flags: no-writes
-- Returns: {identifier fields, cases (HGETALL), merge ids, merge state fields, timeline length,
--     the profile as it was (HGETALL)}.
-- Errors: none of its own.
return {redis.call('HKEYS', K.identifiers), redis.call('HGETALL', K.cases),
        redis.call('ZRANGE', K.merge_history, 0, -1), redis.call('HKEYS', K.merge_state),
        redis.call('XLEN', K.timeline), redis.call('HGETALL', K.erased_profile)}
