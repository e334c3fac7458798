-- engagement_journey_set: CaseService.SetJourney: the tenant's stages, in journey order. The
-- caller first read the stages and counted the open cases of every stage it drops in every
-- bucket of the open-case index (other slots: CaseStore::SetJourney); the stages are set only
-- when they are still the ones it counted against, else it reads and counts again.
--
-- KEYS:
--   journey_stages         the tenant's journey stages ("a\nb\nc")
-- ARGV:
--   checked                the stages the caller read ('' for none)
--   stages...              the new stages (validated: [a-z0-9_-])
-- Returns: 1 when set, 0 when the stages are no longer `checked` (nothing changed).
-- Errors: none.
if (redis.call('GET', K.journey_stages) or '') ~= P.checked then return 0 end
redis.call('SET', K.journey_stages, table.concat(P.stages, '\n'))
return 1
