-- privacy_redact_chunk: one step of a redaction's copy (RedactEvent): the next entries of the
-- timeline after the progress kept in the redaction hash are copied with their own ids into the
-- staging stream, the redacted event with its new text (os_redact_step).
--
-- KEYS:
--   profile            the customer's profile hash
--   timeline           its timeline stream (the one being rebuilt)
--   staging            the copy being built (keys::CustomerKeys::timeline_rebuild)
--   dedup              its event id -> stream id hash
--   redaction          the redaction hash of this timeline (the record on the customer whose
--                      timeline holds the event; the progress on each stream rebuilt)
--   merge_state        its merge state hash (a merge or unmerge meanwhile changes its length)
-- ARGV:
--   customer_id        the customer (for the guard's errors)
--   token              the redaction's token (20 digits: later redactions sort after)
--   event_id           the event redacted
--   blob               the event to store in its place
--   max_entries:int    entries copied at most (privacy::kRedactChunkEntries)
--   max_bytes:int      bytes of fields and values copied at most, plus one entry
--   largest_entry:int  the largest entry an append stores (privacy::kRedactLargestEntryBytes)
--   root:int           1 for the customer whose timeline holds the event (guarded), 0 for a
--                      customer merged into it (its copy, kept for an Unmerge)
-- Returns: {'more'|'caught'|'swapped'|'stale', entries, bytes}: 'caught' when the copy reached
--     the timeline's end (the swap comes next), 'swapped' when this stream is done, 'stale'
--     when this redaction is over (its record gone, or a newer one has been here).
-- Errors: for the root, os_guard's (not found, erased, merged) without OS_BUSY.
local answer, n, bytes, caught = os_redact_step(K, P, false)
if answer then return answer end
if caught then return {'caught', n, bytes} end
return {'more', n, bytes}
