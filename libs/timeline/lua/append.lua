-- timeline_append: stores events on a customer's timeline with all their effects (os_append,
-- libs/timeline/lua/effects.lua): TimelineService.Append, once the customer is resolved.
-- The merge tag marks events that belong to a merged source (an Unmerge gives them back): the
-- given tag (the append was redirected from the source's id: every merge on the way), else the
-- merges the `via` identifier came with, if any.
--
-- KEYS:
--   profile                the customer's profile hash
--   timeline               its timeline stream
--   dedup                  its event_id -> stream id hash
--   conversations          its open conversations
--   identifiers            its identifiers hash (the via field's merge chain)
--   conversation_records   its conversation records
--   cases                  its cases
--   contacts               its contacts by time (30 days)
--   contact_channels       its latest contact per channel
--   signals                its sentiment counts, negative streak and repeat flag
--   outbox                 its outbox: alerts, journey counters and activity (libs/outbox)
--   notify_channel         the customer's notify channel (what is published: timeline::PublishedEntry)
-- ARGV:
--   customer_id            the customer's id
--   now_ms:int             now, in ms
--   tag                    the merge chain the append was redirected through ('' when none)
--   via                    the identifiers-hash field the customer was named by ('' by id)
--   repeat_window_ms:int   a contact this long after a case was resolved still repeats it
--   alert_repeat_contacts:int
--                          REPEAT_CONTACT is raised on this many contacts in 7 days
--   alert_negative_streak:int
--                          NEGATIVE_STREAK is raised at this many negative events in a row
--   max_events:int         the tenant's retention limit on events (0: none)
--   max_age_ms:int         the tenant's retention limit on age, in ms (0: none)
--   events...              per event, os_event_fields values in the order of os_event_at
--                          (timeline::AppendEventArgs writes them)
-- Returns: a flat list: per event its stream id, 1 if duplicate else 0, the stored blob if
--   duplicate else '' (three values each), then the number of entries in the outbox
--   (libs/outbox drains it when not 0).
-- Errors: os_guard's (OS_NOT_FOUND, OS_MOVED, OS_BUSY) for an unknown, erased, merged or held
--   customer; OS_CONFLICT consent withdrawn for channel CHANNEL_<name>.
os_effects({p = K.profile, tl = K.timeline, dd = K.dedup, cv = K.conversations,
            ids = K.identifiers, cs = K.conversation_records, ca = K.cases, ct = K.contacts,
            cc = K.contact_channels, sg = K.signals, ob = K.outbox, nf = K.notify_channel},
           {cid = P.customer_id, now = P.now_ms, tag = P.tag,
            via = P.via, window = P.repeat_window_ms,
            arepeat = P.alert_repeat_contacts, astreak = P.alert_negative_streak,
            maxev = P.max_events, maxage = P.max_age_ms})
local evs = {}
for b = 1, #P.events, os_event_fields do evs[#evs + 1] = os_event_at(P.events, b) end
local out, err = os_append(evs)
if not out then return err end
out[#out + 1] = redis.call('XLEN', K.outbox)
return out
