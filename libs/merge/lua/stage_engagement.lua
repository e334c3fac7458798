-- merge_stage_engagement: copies one chunk of the engagement state a merge or an unmerge moves
-- into a staging hash in the slot of the customer that applies it (merge_swap and
-- merge_remove on the target, merge_restore on the source; libs/merge/lua/engagement.lua).
-- Fields are "<part>|<name>": cs|<conversation id>, ca|<case id>, fa|<fact>: a record (JSON);
-- ct|<member>, cc|<channel>: a contact's or a contact channel's score; sg|<field>: a sentiment
-- count; du|<case id>: the due time the due-promise index holds for the case's promise. A field
-- is written once (HSETNX): a retried chunk changes nothing (both customers are held, so what
-- is copied does not change meanwhile).
--
-- KEYS:
--   staging          the staging hash (keys::CustomerKeys::merge_staging_engagement)
--   merge_state      the merge state hash of the same customer
-- ARGV:
--   done             the merge_state field set once the staging was applied ("<merge>:swapped",
--                    "<merge>:restored", "<merge>:unmerged")
--   only_merge       '' to copy every record; else only records (cs, ca, fa) whose merge
--                    chain (mg) ends with this merge are copied (what an unmerge gives back)
--   pairs...         (field, value) pairs
-- Returns: how many fields were written, or -1 when the staging was applied already (nothing
--   written).
-- Errors: none of its own.
if redis.call('HEXISTS', K.merge_state, P.done) == 1 then return -1 end
local n = 0
local p = P.pairs
for i = 1, #p, 2 do
  local keep = true
  local part = string.match(p[i], '^(%a+)|')
  if P.only_merge ~= '' and (part == 'cs' or part == 'ca' or part == 'fa') then
    keep = os_merge_last(cjson.decode(p[i + 1]).mg) == P.only_merge
  end
  if keep then n = n + redis.call('HSETNX', K.staging, p[i], p[i + 1]) end
end
return n
