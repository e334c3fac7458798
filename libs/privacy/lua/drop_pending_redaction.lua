-- privacy_drop_pending_redaction: drops a redaction's entry in the pending list while it holds
-- the value recovery read (a redaction that finished, or whose run stopped before its record).
--
-- KEYS:
--   pending        the pending redactions hash (keys::PendingRedactionsKey)
-- ARGV:
--   field          "<tenant>/<customer>"
--   value          the value read (ms of its latest step)
-- Returns: 1 when dropped, else 0.
-- Errors: none of its own.
if redis.call('HGET', K.pending, P.field) == P.value then
  return redis.call('HDEL', K.pending, P.field)
end
return 0
