-- privacy_redact_end: drops a redaction's record (and, when asked, the copy under way) when the
-- record is this redaction's.
--
-- KEYS:
--   redaction      the customer's redaction hash
--   staging        its copy under way (keys::CustomerKeys::timeline_rebuild)
-- ARGV:
--   token          the redaction's token
--   drop_copy:int  1: the copy under way and its progress go too (the customer was merged or
--                  erased meanwhile)
-- Returns: 1 when the record was this redaction's and went, else 0.
-- Errors: none of its own.
if redis.call('HGET', K.redaction, 'tok') ~= P.token then return 0 end
redis.call('HDEL', K.redaction, 'tok', 'eid', 'sum', 'body', 'new', 'old', 'sid', 'am', 'srcs')
if P.drop_copy == 1 then
  redis.call('HDEL', K.redaction, 'ptok', 'copied', 'mgn')
  redis.call('UNLINK', K.staging)
end
return 1
