-- privacy_redact_begin: writes a redaction's record into the redaction hash of the timeline
-- holding the event, unless a record is there (another redaction goes first).
--
-- KEYS:
--   redaction      the customer's redaction hash
-- ARGV:
--   token          the redaction's token (field tok)
--   event_id       the event redacted (eid)
--   summary        its new summary, masked (sum)
--   body           its new body, masked (body)
--   blob           the event as it will be stored (new)
--   old_blob       the event as it was (old)
--   stream_id      its stream id in the timeline (sid)
--   appended       its 'a' field, when a merge moved it (am)
--   sources        the customers merged into it, comma-separated (srcs)
-- Returns: 1 when written, 0 when a record was there.
-- Errors: none of its own.
if redis.call('HEXISTS', K.redaction, 'tok') == 1 then return 0 end
redis.call('HSET', K.redaction, 'tok', P.token, 'eid', P.event_id, 'sum', P.summary,
           'body', P.body, 'new', P.blob, 'old', P.old_blob, 'sid', P.stream_id,
           'am', P.appended, 'srcs', P.sources)
return 1
