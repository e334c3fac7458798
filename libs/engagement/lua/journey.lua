-- os_journey (helper): where open cases stand in the tenant's journey, and how long they stayed
-- in each stage, kept by every function that moves a case (libs/engagement, libs/merge,
-- libs/privacy) so GetJourneyStats reads one place.
--
-- The tenant's keys: the open-case index (keys::TenantKeys::journey_open), the completed stays
-- (journey_stays) and the counters (journey_counters). A case function changes them through the
-- customer's outbox (K.p, K.ob: libs/outbox/lua/write.lua; outbox_journey applies the entries);
-- os_journey_move, run by the merge steps, writes to the outbox it is given. Arguments from P:
-- cid the customer, now (ms).
--
-- The open index is a zset whose scores are all 0: a member "<stage>|<entered ms, 15 digits>|
-- <customer>|<case>" sorts a stage's cases together, oldest first, so a stage's count is a
-- ZLEXCOUNT and its median entry a ZRANGE BYLEX with LIMIT. Stage names are [a-z0-9_-], all
-- below '|' and '}', so "[<stage>|" .. "(<stage>}" is exactly one stage. A case record holds
-- its stage (sg) and entry time (se), so its member is rebuilt from the record alone.
-- The stays of a stage are a ring of its latest os_journey_stays_kept in one hash.

local os_journey_stays_kept = 1000

local function os_journey_member(stage, entered, customer, case_id)
  return string.format('%s|%015d|%s|%s', stage, entered, customer, case_id)
end

-- The lex range of one stage's members in the open index.
local function os_journey_range(stage)
  return '[' .. stage .. '|', '(' .. stage .. '}'
end

-- Case `id` of customer P.cid, record `c`, enters `stage` now ('' leaves it out of the journey).
local function os_journey_enter(id, c, stage)
  c.sg = stage
  c.se = P.now
  if stage == '' then return end
  os_outbox_journey_enter(K.p, K.ob, os_journey_member(stage, c.se, P.cid, id))
  os_outbox_count(K.p, K.ob, stage .. ':entered')
end

-- Case `id` of customer P.cid, record `c`, leaves its stage now (resolved or moved on): its
-- stay is recorded.
local function os_journey_leave(id, c)
  if c.sg == '' then return end
  os_outbox_journey_leave(K.p, K.ob, os_journey_member(c.sg, c.se, P.cid, id), c.sg,
                          math.max(0, P.now - c.se))
end

-- An open case `id`, record `c`, now belongs to customer `to` instead of `from` (a merge or an
-- unmerge): its entry keeps its stage and time. The move is written to the outbox `ob` (profile
-- `p`) of the customer whose function moves the case: jr of the old member (it names `from`,
-- maybe not the outbox's customer), then jo of the new one.
local function os_journey_move(p, ob, id, c, from, to)
  if c.s ~= 'o' or (c.sg or '') == '' then return end
  os_outbox_journey_remove(p, ob, os_journey_member(c.sg, c.se, from, id))
  os_outbox_journey_enter(p, ob, os_journey_member(c.sg, c.se, to, id))
end
