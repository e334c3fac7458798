-- outbox_unmark: clears a customer's pending mark once its outbox is drained, unless a write
-- marked it again meanwhile (its score moved on: that write's drain clears it, or the sweep).
--
-- KEYS:
--   pending            the bucket of pending outboxes holding the customer (keys::PendingOutboxKey)
-- ARGV:
--   member             "<tenant>|<customer>"
--   mark:int           the score the drain started from
-- Returns: 1 when the mark was cleared, else 0.
-- Errors: none.
if tonumber(redis.call('ZSCORE', K.pending, P.member) or '-1') ~= P.mark then return 0 end
return redis.call('ZREM', K.pending, P.member)
