#include "libs/merge/merge_engine.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/identity_store.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/free_text.h"
#include "onestory/v1/timeline.pb.h"

namespace onestory::merge {
namespace {

using redis::Reply;
using redis::Script;

// Steps. A record's `step` field names the next one to run.
enum StepId {
  kLock = 1,
  kStage = 2,  // ends with the swap (failpoint "merge.swap" before it)
  kIdentifiers = 4,
  kMark = 5,
  kFinish = 6,
  kULock = 11,
  kUReturn = 12,
  kURemove = 13,
  kUIdentifiers = 14,
  kURelease = 15,
  kUFinish = 16,
  kDone = 99,
};

const char* StepName(int step) {
  switch (step) {
    case kLock:
      return "merge.lock";
    case kStage:
      return "merge.stage";
    case kIdentifiers:
      return "merge.identifiers";
    case kMark:
      return "merge.mark";
    case kFinish:
      return "merge.finish";
    case kULock:
      return "unmerge.lock";
    case kUReturn:
      return "unmerge.return";
    case kURemove:
      return "unmerge.remove";
    case kUIdentifiers:
      return "unmerge.identifiers";
    case kURelease:
      return "unmerge.release";
    case kUFinish:
      return "unmerge.finish";
    default:
      return "done";
  }
}

constexpr size_t kReadChunk = 1000;
constexpr size_t kWriteChunkEntries = 128;  // keeps each script near 2 ms
constexpr size_t kWriteChunkBytes = 4 << 20;
constexpr int kMaxReasonBytes = 1024;
constexpr int kMaxTakePaths = 64;

// KEYS: profile. ARGV: customer id, lock, role ('merge' | 'unmerge-source' | 'unmerge-target'),
// expected target, merge id.
const Script kLockScript("merge.lock", R"lua(
local g = redis.call('HMGET', KEYS[1], 'created_at', 'merged_into', 'merge_lock', 'merge_id')
if not g[1] then return redis.error_reply('OS_NOT_FOUND customer ' .. ARGV[1] .. ' not found') end
if g[3] == ARGV[2] then return 1 end
if g[3] then
  return redis.error_reply('OS_BUSY customer ' .. ARGV[1] .. ' is held by merge ' .. g[3] ..
                           '; retry shortly')
end
if ARGV[3] == 'merge' and g[2] then
  return redis.error_reply('OS_CONFLICT customer ' .. ARGV[1] .. ' was merged into ' .. g[2] ..
                           ' (merge ' .. (g[4] or '?') .. ')')
end
if ARGV[3] == 'unmerge-source' and (g[2] ~= ARGV[4] or g[4] ~= ARGV[5]) then
  return redis.error_reply('OS_CONFLICT customer ' .. ARGV[1] .. ' is not merged by ' .. ARGV[5])
end
if ARGV[3] == 'unmerge-target' and g[2] then
  return redis.error_reply('OS_CONFLICT target ' .. ARGV[1] .. ' was since merged into ' .. g[2] ..
                           ' by merge ' .. (g[4] or '?') .. '; unmerge that one first')
end
redis.call('HSET', KEYS[1], 'merge_lock', ARGV[2])
return 1
)lua");

// KEYS: merge record. ARGV: record, next step, phase ('merge' | 'unmerge'), now ms. Saves the
// record with its next step unless another driver of the same phase is already further on
// (returns 0): a record never goes back.
const Script kSaveStep("merge.save_step", R"lua(
local cur = redis.call('HMGET', KEYS[1], 'step', 'phase')
if cur[1] and cur[2] == ARGV[3] and tonumber(cur[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'step', ARGV[2], 'phase', ARGV[3], 'updated_at',
           ARGV[4])
return 1
)lua");

// KEYS: merge state, staging timeline, staging dedup, staging remap, target profile. ARGV: merge
// id. Gives up a merge that has not swapped: drops its staging keys and the target's lock.
// Returns 0 when the swap happened after all.
const Script kAbandon("merge.abandon", R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1] .. ':swapped') == 1 then return 0 end
redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4])
if redis.call('HGET', KEYS[5], 'merge_lock') == ARGV[1] then
  redis.call('HDEL', KEYS[5], 'merge_lock')
end
return 1
)lua");

// KEYS: profile. ARGV: lock. Releases the lock when it is held by ARGV[1].
const Script kUnlockScript("merge.unlock", R"lua(
if redis.call('HGET', KEYS[1], 'merge_lock') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'merge_lock')
  return 1
end
return 0
)lua");

// KEYS: staging timeline, merge state, staging dedup, staging remap. ARGV: merge id, then per
// entry: id, blob, tag, appended ms, event id, id before the merge ('' for source events).
// Builds the rebuilt timeline with its dedup and remap hashes beside the live ones, a chunk at
// a time, so the swap only renames.
const Script kStageScript("merge.stage", R"lua(
if redis.call('HEXISTS', KEYS[2], ARGV[1] .. ':swapped') == 1 then return -1 end
-- Entries at or below the staging stream's newest are there already (two drivers of one merge,
-- a retry and the recovery pass, may write the same plan at once).
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local top_ms, top_seq = -1, -1
if #top > 0 then
  local ms, seq = string.match(top[1][1], '^(%d+)-(%d+)$')
  top_ms, top_seq = tonumber(ms), tonumber(seq)
end
for i = 2, #ARGV, 6 do
  local ms, seq = string.match(ARGV[i], '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq)
  if ms > top_ms or (ms == top_ms and seq > top_seq) then
  local fields = {'e', ARGV[i + 1]}
  if ARGV[i + 2] ~= '' then fields[#fields + 1] = 'm'; fields[#fields + 1] = ARGV[i + 2] end
  if ARGV[i + 3] ~= '' then fields[#fields + 1] = 'a'; fields[#fields + 1] = ARGV[i + 3] end
  redis.call('XADD', KEYS[1], ARGV[i], unpack(fields))
  redis.call('HSET', KEYS[3], ARGV[i + 4], ARGV[i])
  if ARGV[i + 5] ~= '' then redis.call('HSET', KEYS[4], ARGV[i + 5], ARGV[i]) end
  end
end
return 1
)lua");

// KEYS: staging remap, merge state. ARGV: merge id, then (old id, new id) pairs: remap entries
// of earlier merges carried forward to the new ids.
const Script kStageRemap("merge.stage_remap", R"lua(
if redis.call('HEXISTS', KEYS[2], ARGV[1] .. ':swapped') == 1 then return -1 end
-- HSETNX: an entry this merge staged itself (a position in its own source) wins over an older
-- one carried forward (after an unmerge and a new merge of the same pair).
for i = 2, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
)lua");

// Engagement state (libs/engagement) follows a merge. Appended to the swap and remove scripts,
// with the source's and the target's conversation records, cases, facts, contacts, contact
// channels and signals as KEYS[first .. first + 11] and the tenant-wide due-promise index
// next. Records that came from the source carry the merge chain in "mg", so an Unmerge gives
// them back (as they are then: changes made while merged go back with them). The target's own
// record wins when both have one id.
constexpr char kEngagementMergeLua[] = R"lua(
local function os_engagement_keys(first)
  local k = {}
  for i, name in ipairs({'cs', 'ca', 'fa', 'ct', 'cc', 'sg'}) do
    k['s' .. name] = KEYS[first + i - 1]
    k['t' .. name] = KEYS[first + 5 + i]
  end
  k.due = KEYS[first + 12]
  return k
end

-- Moves the journey index entry and the due promise of case `id` from customer a to b.
local function os_move_case_index(c, id, a, b, tenant, jp, due)
  if c.s == 'o' and c.sg ~= '' then
    -- The tenant's open-case index (keys::TenantKeys::journey_open, os_journey_member's format).
    local z = jp .. 'open'
    if redis.call('ZREM', z, string.format('%s|%015d|%s|%s', c.sg, c.se, a, id)) == 1 then
      redis.call('ZADD', z, 0, string.format('%s|%015d|%s|%s', c.sg, c.se, b, id))
    end
  end
  local d = redis.call('ZSCORE', due, tenant .. '|' .. a .. '|' .. id)
  if d then
    redis.call('ZREM', due, tenant .. '|' .. a .. '|' .. id)
    redis.call('ZADD', due, d, tenant .. '|' .. b .. '|' .. id)
  end
end

-- `state`: the target's merge state hash, where the channels the merge raised are kept.
local function os_merge_engagement(first, state, mid, src, tgt, tenant, jp)
  local k = os_engagement_keys(first)
  for _, name in ipairs({'cs', 'ca', 'fa'}) do
    local all = redis.call('HGETALL', k['s' .. name])
    for i = 1, #all, 2 do
      if redis.call('HEXISTS', k['t' .. name], all[i]) == 0 then
        local r = cjson.decode(all[i + 1])
        if r.mg then r.mg = r.mg .. ',' .. mid else r.mg = mid end
        redis.call('HSET', k['t' .. name], all[i], cjson.encode(r))
        if name == 'ca' then os_move_case_index(r, all[i], src, tgt, tenant, jp, k.due) end
      end
    end
  end
  local ct = redis.call('ZRANGE', k.sct, 0, -1, 'WITHSCORES')
  for i = 1, #ct, 2 do redis.call('ZADD', k.tct, 'NX', ct[i + 1], ct[i]) end
  -- Contact channels: remember what the merge raised ("<channel>|<before or ''>|<after>"), so
  -- an Unmerge can lower it again.
  local cc = redis.call('ZRANGE', k.scc, 0, -1, 'WITHSCORES')
  local raised = {}
  for i = 1, #cc, 2 do
    local before = redis.call('ZSCORE', k.tcc, cc[i])
    if not before or tonumber(before) < tonumber(cc[i + 1]) then
      redis.call('ZADD', k.tcc, cc[i + 1], cc[i])
      raised[#raised + 1] = cc[i] .. '|' .. (before or '') .. '|' .. cc[i + 1]
    end
  end
  redis.call('HSET', state, mid .. ':cc', table.concat(raised, '\n'))
  local sg = redis.call('HGETALL', k.ssg)
  for i = 1, #sg, 2 do
    if string.match(sg[i], '^[pn]:') then redis.call('HINCRBY', k.tsg, sg[i], sg[i + 1]) end
  end
end

local function os_unmerge_engagement(first, state, mid, src, tgt, tenant, jp)
  local k = os_engagement_keys(first)
  for _, name in ipairs({'cs', 'ca', 'fa'}) do
    local all = redis.call('HGETALL', k['t' .. name])
    for i = 1, #all, 2 do
      local r = cjson.decode(all[i + 1])
      if r.mg then
        local rest, last = string.match(r.mg, '^(.*),([^,]*)$')
        if not last then rest, last = nil, r.mg end
        if last == mid then
          r.mg = rest
          redis.call('HSET', k['s' .. name], all[i], cjson.encode(r))
          redis.call('HDEL', k['t' .. name], all[i])
          if name == 'ca' then os_move_case_index(r, all[i], tgt, src, tenant, jp, k.due) end
        end
      end
    end
  end
  local ct = redis.call('ZRANGE', k.sct, 0, -1)
  for _, m in ipairs(ct) do redis.call('ZREM', k.tct, m) end
  -- A channel the merge raised goes back, unless a later contact raised it again.
  local raised = redis.call('HGET', state, mid .. ':cc') or ''
  for line in string.gmatch(raised, '[^\n]+') do
    local ch, before, after = string.match(line, '^([^|]*)|([^|]*)|([^|]*)$')
    if ch and redis.call('ZSCORE', k.tcc, ch) == after then
      if before == '' then
        redis.call('ZREM', k.tcc, ch)
      else
        redis.call('ZADD', k.tcc, before, ch)
      end
    end
  end
  local sg = redis.call('HGETALL', k.ssg)
  for i = 1, #sg, 2 do
    if string.match(sg[i], '^[pn]:') and redis.call('HEXISTS', k.tsg, sg[i]) == 1 then
      if redis.call('HINCRBY', k.tsg, sg[i], -tonumber(sg[i + 1])) <= 0 then
        redis.call('HDEL', k.tsg, sg[i])
      end
    end
  end
end
)lua";

// KEYS: timeline, staging, dedup, staging dedup, merge state, profile, conversations, remap,
// staging remap, then the engagement keys (EngagementMergeKeys). ARGV: merge id, expected
// staging length, then counted (field, value) profile sets, the priors blob, counted (id, value)
// conversations, the swap marker, source, target, tenant, journey prefix. The staged timeline,
// dedup and remap replace the live ones by RENAME (the old values are UNLINKed: freed in the
// background), so the script's time does not grow with the timeline. Returns the head.
// The remap hash sends every stream id the target's readers may hold (in a Watch cursor or a
// List page token) to the id its event has now.
const Script kSwapScript("merge.swap", absl::StrCat(kEngagementMergeLua, R"lua(
if redis.call('HEXISTS', KEYS[5], ARGV[1] .. ':swapped') == 1 then
  return redis.call('HGET', KEYS[5], ARGV[1] .. ':head')
end
local len = redis.call('XLEN', KEYS[2])
if len ~= tonumber(ARGV[2]) then
  return redis.error_reply('OS_CONFLICT staging holds ' .. len .. ' entries, expected ' .. ARGV[2])
end
redis.call('UNLINK', KEYS[1])
if len > 0 then redis.call('RENAME', KEYS[2], KEYS[1]) end
redis.call('UNLINK', KEYS[3])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('RENAME', KEYS[4], KEYS[3]) end
if redis.call('EXISTS', KEYS[9]) == 1 then
  redis.call('UNLINK', KEYS[8])
  redis.call('RENAME', KEYS[9], KEYS[8])
end
local i = 3
local n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('HSET', KEYS[5], ARGV[1] .. ':prior', ARGV[i]); i = i + 1
n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1]); i = i + 2 end
local head = '0-0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then head = last[1][1] end
os_merge_engagement(10, KEYS[5], ARGV[1], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
-- The marker keeps "<events moved>|<events skipped>" for a rerun that finds the swap done.
redis.call('HSET', KEYS[5], ARGV[1] .. ':swapped', ARGV[i], ARGV[1] .. ':head', head)
return head
)lua"));

// KEYS: identifier index. ARGV: new owner, old owner. Moves the entry when the old owner (or
// already the new one) has it. Returns 1 when the new owner has it afterwards.
const Script kMoveIndex("merge.move_index", R"lua(
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return 1 end
if owner == ARGV[2] then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
)lua");

// KEYS: identifiers. ARGV: (field, value) pairs, set where absent.
const Script kAddIdentifiers("merge.add_identifiers", R"lua(
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
)lua");

// KEYS: profile. ARGV: target, merge id, head, notify channel. Marks the source merged.
const Script kMarkScript("merge.mark", R"lua(
local g = redis.call('HMGET', KEYS[1], 'merge_lock', 'merge_id')
if g[1] ~= ARGV[2] and g[2] ~= ARGV[2] then
  return redis.error_reply('OS_CONFLICT customer is neither held nor marked by ' .. ARGV[2])
end
redis.call('HSET', KEYS[1], 'merged_into', ARGV[1], 'merge_id', ARGV[2], 'merged_head', ARGV[3])
if redis.call('HGET', KEYS[1], 'merge_lock') == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'merge_lock')
end
redis.call('PUBLISH', ARGV[4], 'merged')
return 1
)lua");

// KEYS: profile. ARGV: lock, notify channel, message. Releases the lock and wakes watchers.
const Script kReleaseAndNotify("merge.release_notify", R"lua(
if redis.call('HGET', KEYS[1], 'merge_lock') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'merge_lock')
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
)lua");

// KEYS: timeline, dedup. ARGV: (event id, blob, appended ms, remaining merge tags) quads.
// Appends the events the timeline lacks. Returns how many were appended.
const Script kReturnScript("merge.return", R"lua(
local n = 0
for i = 1, #ARGV, 4 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    local sid
    if ARGV[i + 3] ~= '' then
      sid = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1], 'a', ARGV[i + 2], 'm', ARGV[i + 3])
    else
      sid = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1], 'a', ARGV[i + 2])
    end
    redis.call('HSET', KEYS[2], ARGV[i], sid)
    n = n + 1
  end
end
return n
)lua");

// KEYS: timeline, dedup, merge state. ARGV: merge id, then (stream id, event id) pairs.
// Deletes one chunk of the events an unmerge gives back.
const Script kRemoveChunk("merge.remove_chunk", R"lua(
if redis.call('HEXISTS', KEYS[3], ARGV[1] .. ':unmerged') == 1 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('XDEL', KEYS[1], ARGV[i])
  if redis.call('HGET', KEYS[2], ARGV[i + 1]) == ARGV[i] then redis.call('HDEL', KEYS[2], ARGV[i + 1]) end
end
return 1
)lua");

// KEYS: merge state, profile, conversations, then the engagement keys (EngagementMergeKeys).
// ARGV: merge id, then counted lists: restores (field, merged value, had 0/1, old value),
// activity (field, value), conversations (id, value); then source, target, tenant, journey
// prefix.
const Script kRemoveScript("merge.remove", absl::StrCat(kEngagementMergeLua, R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1] .. ':unmerged') == 1 then return 0 end
local i = 2
local n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then
    if ARGV[i + 2] == '1' then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 3])
    else redis.call('HDEL', KEYS[2], ARGV[i]) end
  end
  i = i + 4
end
local all = redis.call('HKEYS', KEYS[2])
for _, f in ipairs(all) do
  if string.sub(f, 1, 4) == 'act:' then redis.call('HDEL', KEYS[2], f) end
end
n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('DEL', KEYS[3])
n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
os_unmerge_engagement(4, KEYS[1], ARGV[1], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
redis.call('HSET', KEYS[1], ARGV[1] .. ':unmerged', '1')
return 1
)lua"));

// KEYS: profile, conversations. ARGV: lock, then counted lists: activity (field, value),
// conversations (id, value). Clears the merge fields of an unmerged source and sets its
// recomputed activity and conversations.
const Script kReleaseSource("merge.release_source", R"lua(
if redis.call('HGET', KEYS[1], 'merge_lock') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'merged_into', 'merge_id', 'merged_head')
if redis.call('HGET', KEYS[1], 'merge_lock') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'merge_lock')
end
local all = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(all) do
  if string.sub(f, 1, 4) == 'act:' then redis.call('HDEL', KEYS[1], f) end
end
local i = 2
local n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
redis.call('DEL', KEYS[2])
n = tonumber(ARGV[i]); i = i + 1
for k = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
return 1
)lua");

// A stream id as numbers, for ordering and for making ids between two others.
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  bool operator<(const StreamId& o) const { return std::tie(ms, seq) < std::tie(o.ms, o.seq); }
  std::string str() const { return absl::StrCat(ms, "-", seq); }
  StreamId Next() const { return seq == UINT64_MAX ? StreamId{ms + 1, 0} : StreamId{ms, seq + 1}; }
};

bool ParseStreamId(absl::string_view s, StreamId* out) {
  std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(s, '-');
  return absl::SimpleAtoi(p.first, &out->ms) && absl::SimpleAtoi(p.second, &out->seq);
}

// One timeline entry as stored, with its event decoded.
struct Entry {
  std::string id;
  std::string blob;
  std::string tag;       // 'm': the merge whose source it belongs to
  std::string appended;  // 'a': ms first stored, for entries moved by a merge
  v1::Event event;
  std::string old_id;  // the id before a merge renumbered it
  bool from_source = false;
};

absl::StatusOr<Entry> ParseEntry(const Reply& r) {
  if (!r.is_array() || r.elements.size() != 2 || !r.elements[1].is_array()) {
    return absl::InternalError("malformed timeline entry");
  }
  Entry e;
  e.id = r.elements[0].str;
  const auto& f = r.elements[1].elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    if (f[i].str == "e") e.blob = f[i + 1].str;
    if (f[i].str == "m") e.tag = f[i + 1].str;
    if (f[i].str == "a") e.appended = f[i + 1].str;
  }
  if (!e.event.ParseFromString(e.blob)) {
    return absl::InternalError(absl::StrCat("undecodable event at ", e.id));
  }
  return e;
}

std::string AppendedMs(const Entry& e) {
  if (!e.appended.empty()) return e.appended;
  return std::string(e.id.substr(0, e.id.find('-')));
}

// An entry's merge tags: the merges that brought it here, innermost first ("m1,m2" for an event
// of A appended after A was merged into B by m1 and B into C by m2). An Unmerge of m takes the
// entries tagged with m and gives them back with m removed.
bool HasTag(absl::string_view tags, absl::string_view merge_id) {
  for (absl::string_view t : absl::StrSplit(tags, ',')) {
    if (t == merge_id) return true;
  }
  return false;
}

std::string WithoutTag(absl::string_view tags, absl::string_view merge_id) {
  std::vector<absl::string_view> kept;
  for (absl::string_view t : absl::StrSplit(tags, ',', absl::SkipEmpty())) {
    if (t != merge_id) kept.push_back(t);
  }
  return absl::StrJoin(kept, ",");
}

std::string WithTag(absl::string_view tags, absl::string_view merge_id) {
  if (HasTag(tags, merge_id)) return std::string(tags);
  return tags.empty() ? std::string(merge_id) : absl::StrCat(tags, ",", merge_id);
}

// Activity and open conversations as the append script keeps them, recomputed from events in
// timeline order.
struct Derived {
  std::map<std::string, int64_t> activity;           // "act:<channel>" -> ms
  std::map<std::string, std::string> conversations;  // id -> "first|last|n|channel"
};

Derived Recompute(const std::vector<const Entry*>& entries) {
  struct Conv {
    int64_t first, last, n;
    int channel;
  };
  Derived d;
  std::map<std::string, Conv> convs;
  for (const Entry* e : entries) {
    const v1::Event& ev = e->event;
    int64_t occ = ToMillis(ev.occurred_at());
    std::string act = absl::StrCat(identity::kActivityPrefix, static_cast<int>(ev.channel()));
    auto it = d.activity.find(act);
    if (it == d.activity.end() || occ > it->second) d.activity[act] = occ;
    if (ev.conversation_id().empty()) continue;
    if (ev.kind() == v1::EVENT_KIND_CALL_ENDED || ev.kind() == v1::EVENT_KIND_CONVERSATION_ENDED) {
      convs.erase(ev.conversation_id());
      continue;
    }
    auto [c, inserted] = convs.try_emplace(ev.conversation_id(), Conv{occ, occ, 0, ev.channel()});
    if (occ >= c->second.last) {
      c->second.last = occ;
      c->second.channel = ev.channel();
    }
    c->second.first = std::min(c->second.first, occ);
    ++c->second.n;
  }
  for (const auto& [id, c] : convs) {
    d.conversations[id] = absl::StrCat(c.first, "|", c.last, "|", c.n, "|", c.channel);
  }
  return d;
}

void AppendCounted(std::vector<std::string>* args,
                   const std::vector<std::pair<std::string, std::string>>& pairs) {
  args->push_back(absl::StrCat(pairs.size()));
  for (const auto& [a, b] : pairs) {
    args->push_back(a);
    args->push_back(b);
  }
}

std::map<std::string, std::string> HashFromReply(const Reply& r) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
    out[r.elements[i].str] = r.elements[i + 1].str;
  return out;
}

absl::Status ValidateActor(const v1::Actor& actor) {
  if (actor.type() == v1::Actor::TYPE_UNSPECIFIED || !v1::Actor::Type_IsValid(actor.type())) {
    return absl::InvalidArgumentError("actor.type: required (CUSTOMER, AGENT, BOT or SYSTEM)");
  }
  bool needs_id = actor.type() == v1::Actor::TYPE_AGENT || actor.type() == v1::Actor::TYPE_BOT;
  if (needs_id && actor.id().empty()) {
    return absl::InvalidArgumentError("actor.id: required for an agent or a bot");
  }
  // As for an event's actor: printable ASCII without spaces.
  return ValidateToken("actor.id", actor.id(), 128, /*allow_empty=*/true);
}

absl::Status ValidateReason(absl::string_view reason) {
  if (reason.empty()) return absl::InvalidArgumentError("reason: required");
  return ValidateText("reason", reason, kMaxReasonBytes);
}

}  // namespace

// One merge or unmerge being driven through its steps.
struct MergeEngine::Run {
  std::string tenant;
  v1::MergeRecord record;
  int step = kLock;
  absl::Time deadline;
  Callback<v1::MergeRecord> done;
  // Working state of the current step.
  std::vector<Entry> target_entries;
  std::vector<Entry> source_entries;
  std::vector<Entry*> plan;     // the merged timeline, in order
  std::string original_record;  // an unmerge's record as it was, restored when refused

  const std::string& id() const { return record.merge_id(); }
  const std::string& source() const { return record.source_customer_id(); }
  const std::string& target() const { return record.target_customer_id(); }
  keys::CustomerKeys source_keys() const { return keys::CustomerKeys(tenant, source()); }
  keys::CustomerKeys target_keys() const { return keys::CustomerKeys(tenant, target()); }
};

namespace {

// Reads a whole stream in chunks.
void ReadStream(redis::Client* client, std::string key, absl::Time deadline,
                Callback<std::vector<Entry>> done) {
  struct State {
    redis::Client* client;
    std::string key;
    absl::Time deadline;
    std::vector<Entry> entries;
    Callback<std::vector<Entry>> done;
  };
  auto st = std::make_shared<State>(State{client, std::move(key), deadline, {}, std::move(done)});
  struct Next {
    static void Read(std::shared_ptr<State> st, std::string start) {
      st->client->Command({"XRANGE", st->key, start, "+", "COUNT", absl::StrCat(kReadChunk)},
                          st->deadline, [st](absl::StatusOr<Reply> r) {
                            if (!r.ok()) return st->done(r.status());
                            for (const Reply& item : r->elements) {
                              absl::StatusOr<Entry> e = ParseEntry(item);
                              if (!e.ok()) return st->done(e.status());
                              st->entries.push_back(*std::move(e));
                            }
                            if (r->elements.size() < kReadChunk)
                              return st->done(std::move(st->entries));
                            Read(st, absl::StrCat("(", st->entries.back().id));
                          });
    }
  };
  Next::Read(std::move(st), "-");
}

// Runs `count` asynchronous operations and calls done with the first error or OK.
class Barrier {
 public:
  static std::shared_ptr<Barrier> Make(size_t count, absl::AnyInvocable<void(absl::Status)> done) {
    auto b = std::shared_ptr<Barrier>(new Barrier(count, std::move(done)));
    if (count == 0) b->Finish();
    return b;
  }
  void Arrive(const absl::Status& st) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      if (!st.ok() && status_.ok()) status_ = st;
      last = --left_ == 0;
    }
    if (last) Finish();
  }

 private:
  Barrier(size_t count, absl::AnyInvocable<void(absl::Status)> done)
      : left_(count), done_(std::move(done)) {}
  void Finish() { done_(status_); }
  absl::Mutex mu_;
  size_t left_;
  absl::Status status_;
  absl::AnyInvocable<void(absl::Status)> done_;
};

}  // namespace

void MergeEngine::Merge(const MergeInput& in, absl::Time deadline, Callback<Result> done) {
  if (absl::Status st = ValidateTenant(in.tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("source_customer_id", in.source_customer_id); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateCustomerId("target_customer_id", in.target_customer_id); !st.ok()) {
    return done(st);
  }
  if (in.source_customer_id == in.target_customer_id) {
    return done(absl::InvalidArgumentError(
        "target_customer_id: must differ from source_customer_id (a customer cannot be merged "
        "into itself)"));
  }
  if (absl::Status st = ValidateReason(in.reason); !st.ok()) return done(st);
  if (absl::Status st = ValidateActor(in.actor); !st.ok()) return done(st);
  if (static_cast<int>(in.take_from_source.size()) > kMaxTakePaths) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("take_from_source: at most ", kMaxTakePaths, " paths")));
  }
  for (size_t i = 0; i < in.take_from_source.size(); ++i) {
    const std::string& p = in.take_from_source[i];
    bool ok = p == "display_name" || p == "language" || p == "tier" ||
              (absl::StartsWith(p, "attributes.") && p.size() > strlen("attributes.") &&
               p.size() <= strlen("attributes.") + identity::kMaxAttributeKeyBytes &&
               ValidateText("take_from_source", p, 512, false).ok());
    if (!ok) {
      return done(absl::InvalidArgumentError(
          absl::StrCat("take_from_source[", i, "]: unknown path '", p,
                       "'; allowed: display_name, language, tier, attributes.<key>")));
    }
  }
  StartMerge(in, deadline, std::move(done));
}

void MergeEngine::StartMerge(const MergeInput& in, absl::Time deadline,
                             Callback<Result> done_once) {
  // Shared: the branches below each finish the call through one of several paths.
  auto done = std::make_shared<Callback<Result>>(std::move(done_once));
  keys::CustomerKeys sk(in.tenant, in.source_customer_id);
  keys::CustomerKeys tk(in.tenant, in.target_customer_id);
  client_->Command(
      {"HMGET", sk.profile(), "created_at", "merged_into", "merge_id", "merge_lock"}, deadline,
      [this, in, tk, deadline, done](absl::StatusOr<Reply> s) {
        if (!s.ok()) return (*done)(s.status());
        const auto& f = s->elements;
        if (f.size() != 4) return (*done)(absl::InternalError("unexpected HMGET reply"));
        if (f[0].is_nil()) {
          return (*done)(absl::NotFoundError(
              absl::StrCat("source_customer_id: customer ", in.source_customer_id, " not found")));
        }
        // Finishes the merge of this very pair (a retry); a merge of another pair holding the
        // source is left to its own caller: ABORTED.
        auto resume = [this, in, deadline, done](const std::string& merge_id, bool finished) {
          Resume(
              in.tenant, merge_id, deadline,
              [in, finished, done](absl::StatusOr<v1::MergeRecord> r) {
                if (!r.ok()) return (*done)(r.status());
                (*done)(Result{*std::move(r), finished});
              },
              std::make_pair(in.source_customer_id, in.target_customer_id));
        };
        if (f[1].is_string()) {
          if (f[1].str == in.target_customer_id) return resume(f[2].str, true);
          return (*done)(absl::FailedPreconditionError(
              absl::StrCat("source_customer_id: customer ", in.source_customer_id,
                           " was already merged into ", f[1].str, " (merge ", f[2].str, ")")));
        }
        if (f[3].is_string()) {
          // A merge holds the source: finish it when it is this one (a retry), else refuse.
          return resume(f[3].str, false);
        }
        client_->Command(
            {"HMGET", tk.profile(), "created_at", "merged_into", "merge_id"}, deadline,
            [this, in, deadline, done](absl::StatusOr<Reply> t) {
              if (!t.ok()) return (*done)(t.status());
              const auto& g = t->elements;
              if (g.size() != 3) return (*done)(absl::InternalError("unexpected HMGET reply"));
              if (g[0].is_nil()) {
                return (*done)(absl::NotFoundError(absl::StrCat(
                    "target_customer_id: customer ", in.target_customer_id, " not found")));
              }
              if (g[1].is_string()) {
                return (*done)(absl::FailedPreconditionError(absl::StrCat(
                    "target_customer_id: customer ", in.target_customer_id, " was merged into ",
                    g[1].str, " (merge ", g[2].str, "); merge into ", g[1].str, " instead")));
              }
              auto run = std::make_shared<Run>();
              run->tenant = in.tenant;
              run->deadline = deadline;
              v1::MergeRecord& rec = run->record;
              rec.set_merge_id(NewRandomId("mrg_"));
              rec.set_source_customer_id(in.source_customer_id);
              rec.set_target_customer_id(in.target_customer_id);
              rec.set_state(v1::MergeRecord::STATE_MERGING);
              rec.set_reason(in.reason);
              *rec.mutable_actor() = in.actor;
              rec.set_automatic(in.automatic);
              *rec.mutable_started_at() = FromMillis(NowMillis());
              for (const auto& p : in.take_from_source) rec.add_take_from_source(p);
              // Its free text (the reason) is masked once, here, before any copy is stored.
              privacy::MaskFreeText(privacy::StorageRedactor(), &rec);
              run->step = kLock;
              run->done = [done](absl::StatusOr<v1::MergeRecord> r) {
                if (!r.ok()) return (*done)(r.status());
                (*done)(Result{*std::move(r), false});
              };
              Log(LogLevel::kInfo, "merge.started",
                  {{"tenant", in.tenant},
                   {"merge_id", rec.merge_id()},
                   {"source", in.source_customer_id},
                   {"target", in.target_customer_id}});
              // The record first, then the pending entry: a record nobody lists holds no locks
              // yet and is harmless.
              client_->Command({"HSET", keys::MergeKey(run->tenant, run->id()), "rec",
                                rec.SerializeAsString(), "step", absl::StrCat(kLock), "phase",
                                "merge", "updated_at", absl::StrCat(NowMillis())},
                               deadline, [this, run](absl::StatusOr<Reply> r) {
                                 if (!r.ok()) return run->done(r.status());
                                 client_->Command({"SADD", keys::PendingMergesKey(),
                                                   absl::StrCat(run->tenant, "/", run->id())},
                                                  run->deadline,
                                                  [this, run](absl::StatusOr<Reply> r) {
                                                    if (!r.ok()) return run->done(r.status());
                                                    Drive(run);
                                                  });
                               });
            });
      });
}

void MergeEngine::Resume(const std::string& tenant, const std::string& merge_id,
                         absl::Time deadline, Callback<v1::MergeRecord> done,
                         std::optional<std::pair<std::string, std::string>> pair) {
  client_->Command(
      {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "step"}, deadline,
      [this, tenant, merge_id, deadline, pair,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (r->elements.size() != 2 || r->elements[0].is_nil()) {
          return done(absl::NotFoundError(absl::StrCat("merge_id: no merge ", merge_id)));
        }
        auto run = std::make_shared<Run>();
        run->tenant = tenant;
        run->deadline = deadline;
        run->done = std::move(done);
        int step = 0;
        if (!run->record.ParseFromString(r->elements[0].str) ||
            !absl::SimpleAtoi(r->elements[1].str, &step)) {
          return run->done(
              absl::InternalError(absl::StrCat("merge ", merge_id, " record unreadable")));
        }
        run->step = step;
        bool merging = run->record.state() == v1::MergeRecord::STATE_MERGING ||
                       run->record.state() == v1::MergeRecord::STATE_MERGED;
        if (pair && (run->source() != pair->first || run->target() != pair->second || !merging)) {
          return run->done(absl::AbortedError(
              absl::StrCat("customer ", pair->first, " is held by merge ", merge_id,
                           merging ? "" : " (being unmerged)", "; retry shortly")));
        }
        Drive(run);
      });
}

void MergeEngine::Drive(std::shared_ptr<Run> run) {
  if (run->step != kDone && failpoint_ && failpoint_(StepName(run->step))) {
    return run->done(absl::UnavailableError(absl::StrCat("failpoint ", StepName(run->step))));
  }
  switch (run->step) {
    case kLock:
      return Lock(run);
    case kStage:
      return Stage(run);
    case kIdentifiers:
      return MoveIdentifiers(run);
    case kMark:
      return Mark(run);
    case kFinish:
      return Finish(run);
    case kULock:
      return UnLock(run);
    case kUReturn:
      return Return(run);
    case kURemove:
      return Remove(run);
    case kUIdentifiers:
      return ReturnIdentifiers(run);
    case kURelease:
      return Release(run);
    case kUFinish:
      return UnFinish(run);
    case kDone:
      return run->done(run->record);
    default:
      return run->done(
          absl::InternalError(absl::StrCat("merge ", run->id(), ": unknown step ", run->step)));
  }
}

// Saves the record with the next step, then runs it.
void MergeEngine::Step(std::shared_ptr<Run> run, int next) {
  run->step = next;
  bool unmerge = run->record.state() == v1::MergeRecord::STATE_UNMERGING ||
                 run->record.state() == v1::MergeRecord::STATE_UNMERGED;
  client_->Eval(kSaveStep, {keys::MergeKey(run->tenant, run->id())},
                {run->record.SerializeAsString(), absl::StrCat(next), unmerge ? "unmerge" : "merge",
                 absl::StrCat(NowMillis())},
                run->deadline, [this, run](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return Fail(run, r.status());
                  if (r->integer == 0) {
                    // Another call (a retry, the recovery pass) is further along with this merge.
                    return run->done(absl::AbortedError(absl::StrCat(
                        "merge ", run->id(), " is being finished by another call; retry shortly")));
                  }
                  if (run->step != kDone) return Drive(run);
                  client_->Command(
                      {"SREM", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", run->id())},
                      run->deadline, [this, run](absl::StatusOr<Reply> r) {
                        if (!r.ok()) return Fail(run, r.status());
                        Drive(run);
                      });
                });
}

void MergeEngine::Fail(std::shared_ptr<Run> run, absl::Status status) {
  Log(LogLevel::kWarning, "merge.step_failed",
      {{"tenant", run->tenant},
       {"merge_id", run->id()},
       {"step", StepName(run->step)},
       {"error", status.ToString()}});
  bool transient = status.code() == absl::StatusCode::kUnavailable ||
                   status.code() == absl::StatusCode::kDeadlineExceeded ||
                   status.code() == absl::StatusCode::kAborted;
  if (transient || run->step != kStage || run->record.state() != v1::MergeRecord::STATE_MERGING) {
    return run->done(std::move(status));  // a retry or the recovery pass goes on from here
  }
  // A lasting failure before the swap (an undecodable stored event, say): nothing anyone can
  // see has changed yet, so give the merge up instead of holding both customers forever.
  keys::CustomerKeys tk = run->target_keys();
  client_->Eval(
      kAbandon,
      {tk.merge_state(), tk.merge_staging(run->id()), tk.merge_staging_dedup(run->id()),
       tk.merge_staging_remap(run->id()), tk.profile()},
      {run->id()}, run->deadline, [this, run, status](absl::StatusOr<Reply> r) {
        if (!r.ok() || r->integer == 0) return run->done(status);
        Log(LogLevel::kError, "merge.abandoned",
            {{"tenant", run->tenant}, {"merge_id", run->id()}, {"error", status.ToString()}});
        ReleaseLocks(run, [this, run, status] {
          client_->Command(
              {"DEL", keys::MergeKey(run->tenant, run->id())}, run->deadline,
              [this, run, status](absl::StatusOr<Reply>) {
                client_->Command(
                    {"SREM", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", run->id())},
                    run->deadline, [run, status](absl::StatusOr<Reply>) { run->done(status); });
              });
        });
      });
}

// ---- merge steps ------------------------------------------------------------------------------

void MergeEngine::ReleaseLocks(std::shared_ptr<Run> run, absl::AnyInvocable<void()> then) {
  auto shared_then = std::make_shared<absl::AnyInvocable<void()>>(std::move(then));
  auto b = Barrier::Make(2, [shared_then](absl::Status) { (*shared_then)(); });
  for (const std::string& c : {run->source(), run->target()}) {
    client_->Eval(kUnlockScript, {keys::CustomerKeys(run->tenant, c).profile()}, {run->id()},
                  run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void MergeEngine::LockBoth(std::shared_ptr<Run> run, const std::string& source_role,
                           const std::string& target_role, absl::AnyInvocable<void()> locked,
                           absl::AnyInvocable<void(absl::Status)> refused) {
  // Lowest customer id first, so two merges of the same pair in opposite directions cannot
  // each hold one lock.
  std::vector<std::pair<std::string, std::string>> order = {{run->source(), source_role},
                                                            {run->target(), target_role}};
  std::sort(order.begin(), order.end());
  struct Callbacks {
    absl::AnyInvocable<void()> locked;
    absl::AnyInvocable<void(absl::Status)> refused;
  };
  auto cbs = std::make_shared<Callbacks>(Callbacks{std::move(locked), std::move(refused)});
  auto lock_one = [this, run, cbs](const std::pair<std::string, std::string>& who,
                                   absl::AnyInvocable<void()> next) {
    client_->Eval(kLockScript, {keys::CustomerKeys(run->tenant, who.first).profile()},
                  {who.first, run->id(), who.second, run->target(), run->id()}, run->deadline,
                  [this, run, cbs, next = std::move(next)](absl::StatusOr<Reply> r) mutable {
                    if (r.ok()) return next();
                    if (r.status().code() == absl::StatusCode::kUnavailable ||
                        r.status().code() == absl::StatusCode::kDeadlineExceeded) {
                      return Fail(run, r.status());  // left for a retry or the recovery pass
                    }
                    cbs->refused(r.status());
                  });
  };
  lock_one(order[0], [lock_one, second = order[1], cbs]() mutable {
    lock_one(second, [cbs] { cbs->locked(); });
  });
}

void MergeEngine::Lock(std::shared_ptr<Run> run) {
  auto abort = [this, run](absl::Status status) {
    // Refused before anything moved: release what this merge holds and forget it.
    ReleaseLocks(run, [this, run, status] {
      client_->Command(
          {"DEL", keys::MergeKey(run->tenant, run->id())}, run->deadline,
          [this, run, status](absl::StatusOr<Reply>) {
            client_->Command(
                {"SREM", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", run->id())},
                run->deadline, [run, status](absl::StatusOr<Reply>) {
                  Log(LogLevel::kInfo, "merge.refused",
                      {{"merge_id", run->id()}, {"reason", status.ToString()}});
                  run->done(status);
                });
          });
    });
  };
  LockBoth(
      run, "merge", "merge",
      [this, run, abort]() mutable {
        // Both held: check the limits on frozen customers.
        keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
        client_->Command(
            {"HGETALL", sk.identifiers()}, run->deadline,
            [this, run, abort, tk, sk](absl::StatusOr<Reply> sids) mutable {
              if (!sids.ok()) return Fail(run, sids.status());
              client_->Command(
                  {"HKEYS", tk.identifiers()}, run->deadline,
                  [this, run, abort, tk, sk,
                   sids = *std::move(sids)](absl::StatusOr<Reply> tids) mutable {
                    if (!tids.ok()) return Fail(run, tids.status());
                    std::map<std::string, int> per_type;
                    for (const Reply& f : tids->elements)
                      ++per_type[f.str.substr(0, f.str.find(':'))];
                    run->record.clear_source_identifiers();
                    for (size_t i = 0; i + 1 < sids.elements.size(); i += 2) {
                      const std::string& f = sids.elements[i].str;
                      ++per_type[f.substr(0, f.find(':'))];
                      v1::LinkedIdentifier li;
                      if (identity::LinkedIdentifierFromEntry(f, sids.elements[i + 1].str, &li)) {
                        *run->record.add_source_identifiers() = std::move(li);
                      }
                    }
                    size_t total = tids->elements.size() + sids.elements.size() / 2;
                    if (total > static_cast<size_t>(identity::kMaxIdentifiersPerCustomer)) {
                      return abort(absl::ResourceExhaustedError(absl::StrCat(
                          "the merged customer would have ", total, " identifiers; at most ",
                          identity::kMaxIdentifiersPerCustomer)));
                    }
                    for (const auto& [type, n] : per_type) {
                      if (n > identity::kMaxIdentifiersPerType) {
                        return abort(absl::ResourceExhaustedError(absl::StrCat(
                            "the merged customer would have ", n, " identifiers of type ", type,
                            "; at most ", identity::kMaxIdentifiersPerType)));
                      }
                    }
                    auto lens = std::make_shared<std::vector<int64_t>>(2, 0);
                    auto b = Barrier::Make(2, [this, run, abort, lens](absl::Status st) mutable {
                      if (!st.ok()) return Fail(run, st);
                      int64_t events = (*lens)[0] + (*lens)[1];
                      if (events > kMaxMergeEvents) {
                        return abort(absl::ResourceExhaustedError(
                            absl::StrCat("the merged timeline would hold ", events,
                                         " events; at most ", kMaxMergeEvents, " can be merged")));
                      }
                      Step(run, kStage);
                    });
                    client_->Command({"XLEN", sk.timeline()}, run->deadline,
                                     [b, lens](absl::StatusOr<Reply> r) {
                                       if (r.ok()) (*lens)[0] = r->integer;
                                       b->Arrive(r.status());
                                     });
                    client_->Command({"XLEN", tk.timeline()}, run->deadline,
                                     [b, lens](absl::StatusOr<Reply> r) {
                                       if (r.ok()) (*lens)[1] = r->integer;
                                       b->Arrive(r.status());
                                     });
                  });
            });
      },
      abort);
}

void MergeEngine::Stage(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command(
      {"HGET", tk.merge_state(), absl::StrCat(run->id(), ":swapped")}, run->deadline,
      [this, run, sk, tk](absl::StatusOr<Reply> swapped) {
        if (!swapped.ok()) return Fail(run, swapped.status());
        if (swapped->is_string()) {  // swapped by an earlier run: take its counts
          std::pair<std::string, std::string> counts = absl::StrSplit(swapped->str, '|');
          int64_t moved = 0, skipped = 0;
          if (absl::SimpleAtoi(counts.first, &moved) && absl::SimpleAtoi(counts.second, &skipped)) {
            run->record.set_events_moved(moved);
            run->record.set_events_skipped(skipped);
          }
          return Step(run, kIdentifiers);
        }
        ReadStream(
            client_, tk.timeline(), run->deadline,
            [this, run, sk, tk](absl::StatusOr<std::vector<Entry>> t) {
              if (!t.ok()) return Fail(run, t.status());
              run->target_entries = *std::move(t);
              ReadStream(
                  client_, sk.timeline(), run->deadline,
                  [this, run, tk](absl::StatusOr<std::vector<Entry>> s) {
                    if (!s.ok()) return Fail(run, s.status());
                    run->source_entries = *std::move(s);
                    // Interleave by occurred_at: the target's events keep their order and ids; the
                    // source's (sorted by occurred_at, stable) take ids in the gaps between them.
                    absl::flat_hash_set<std::string> target_ids;
                    for (const Entry& e : run->target_entries)
                      target_ids.insert(e.event.event_id());
                    std::vector<Entry*> src;
                    int64_t skipped = 0;
                    for (Entry& e : run->source_entries) {
                      if (target_ids.contains(e.event.event_id())) {
                        ++skipped;
                        continue;
                      }
                      e.from_source = true;
                      e.tag = WithTag(e.tag, run->id());
                      src.push_back(&e);
                    }
                    // The two timelines are interleaved by occurred_at and each keeps its own
                    // order, so the events after a reader's (remapped) position in either are
                    // exactly those it has not seen. Every entry gets a new id above the target's
                    // newest, in merged order; the old ids of the target's entries are remapped
                    // (see kSwapScript), and each entry keeps the time it was first stored in 'a'.
                    StreamId next{0, 0};
                    if (!run->target_entries.empty()) {
                      StreamId last;
                      if (!ParseStreamId(run->target_entries.back().id, &last)) {
                        return Fail(run,
                                    absl::InternalError("bad stream id in the target's timeline"));
                      }
                      next = StreamId{last.ms + 1, 0};
                    } else {
                      next = StreamId{0, 1};
                    }
                    std::vector<Entry*> plan;
                    size_t j = 0;
                    auto place = [&plan, &next](Entry* e) {
                      e->old_id = e->id;
                      e->appended = AppendedMs(*e);
                      e->id = next.str();
                      next = next.Next();
                      plan.push_back(e);
                    };
                    for (Entry& t : run->target_entries) {
                      int64_t occ = ToMillis(t.event.occurred_at());
                      while (j < src.size() && ToMillis(src[j]->event.occurred_at()) < occ) {
                        place(src[j++]);
                      }
                      place(&t);
                    }
                    while (j < src.size()) place(src[j++]);
                    run->record.set_events_moved(static_cast<int64_t>(src.size()));
                    run->record.set_events_skipped(skipped);
                    run->plan = std::move(plan);
                    client_->Command(
                        {"XREVRANGE", tk.merge_staging(run->id()), "+", "-", "COUNT", "1"},
                        run->deadline, [this, run](absl::StatusOr<Reply> last) {
                          if (!last.ok()) return Fail(run, last.status());
                          size_t from = 0;
                          if (!last->elements.empty()) {
                            // An earlier run wrote up to here: continue after it.
                            StreamId written, id;
                            ParseStreamId(last->elements[0].elements[0].str, &written);
                            while (from < run->plan.size() &&
                                   ParseStreamId(run->plan[from]->id, &id) && !(written < id)) {
                              ++from;
                            }
                          }
                          WriteStaging(run, from);
                        });
                  });
            });
      });
}

void MergeEngine::WriteStaging(std::shared_ptr<Run> run, size_t from) {
  if (from >= run->plan.size()) return StageRemap(run);
  keys::CustomerKeys tk = run->target_keys();
  std::vector<std::string> args = {run->id()};
  size_t bytes = 0, end = from;
  while (end < run->plan.size() && end - from < kWriteChunkEntries && bytes < kWriteChunkBytes) {
    const Entry* e = run->plan[end++];
    args.push_back(e->id);
    args.push_back(e->blob);
    args.push_back(e->tag);
    args.push_back(e->appended);
    args.push_back(e->event.event_id());
    // The remap key: a target's old id as is; a source's prefixed with the source's id, which
    // its cursors name.
    args.push_back(e->from_source ? absl::StrCat(run->source(), "|", e->old_id) : e->old_id);
    bytes += e->blob.size();
  }
  client_->Eval(kStageScript,
                {tk.merge_staging(run->id()), tk.merge_state(), tk.merge_staging_dedup(run->id()),
                 tk.merge_staging_remap(run->id())},
                std::move(args), run->deadline, [this, run, end](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return Fail(run, r.status());
                  if (r->integer == -1) return Step(run, kIdentifiers);  // swapped meanwhile
                  WriteStaging(run, end);
                });
}

// Carries the remap entries of earlier merges forward to the new ids: an old id whose event
// is gone (given back by an unmerge) maps to the new id of the nearest earlier event.
void MergeEngine::StageRemap(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys(), sk = run->source_keys();
  auto olds = std::make_shared<std::vector<Reply>>(2);
  auto b = Barrier::Make(2, [this, run, tk, olds](absl::Status st) {
    if (!st.ok()) return Fail(run, st);
    // Old id -> new id, for each side's entries. A source event skipped as a duplicate maps to
    // the target's event with its event_id.
    std::map<StreamId, std::string> target_moved, source_moved;
    std::map<std::string, std::string> new_id_of_event;
    for (const Entry* e : run->plan) {
      StreamId id;
      if (!ParseStreamId(e->old_id, &id)) continue;
      (e->from_source ? source_moved : target_moved)[id] = e->id;
      if (!e->from_source) new_id_of_event[e->event.event_id()] = e->id;
    }
    std::vector<std::string> args = {run->id()};
    for (const Entry& e : run->source_entries) {
      StreamId id;
      auto kept = new_id_of_event.find(e.event.event_id());
      if (!e.from_source && kept != new_id_of_event.end() && ParseStreamId(e.id, &id)) {
        source_moved[id] = kept->second;
        args.push_back(absl::StrCat(run->source(), "|", e.id));
        args.push_back(kept->second);
      }
    }
    // Entries of earlier merges (ids of either side, or "<customer>|<id>" keys) are carried
    // forward; an old id whose event is gone (given back by an unmerge) maps to the nearest
    // earlier event.
    auto carry = [&args](const Reply& old, const std::map<StreamId, std::string>& moved,
                         const std::string& prefix) {
      for (size_t i = 0; i + 1 < old.elements.size(); i += 2) {
        StreamId was;
        if (!ParseStreamId(old.elements[i + 1].str, &was)) continue;
        auto it = moved.upper_bound(was);
        const std::string& key = old.elements[i].str;
        args.push_back(prefix.empty() || key.find('|') != std::string::npos
                           ? key
                           : absl::StrCat(prefix, "|", key));
        args.push_back(it == moved.begin() ? "0-0" : std::prev(it)->second);
      }
    };
    carry((*olds)[0], target_moved, "");
    carry((*olds)[1], source_moved, run->source());
    auto swap = [this, run](absl::StatusOr<Reply> r) {
      if (!r.ok()) return Fail(run, r.status());
      if (r->integer == -1) return Step(run, kIdentifiers);  // swapped meanwhile
      if (failpoint_ && failpoint_("merge.swap")) {
        return run->done(absl::UnavailableError("failpoint merge.swap"));
      }
      Swap(run);
    };
    // In chunks, so no script runs long.
    size_t pairs = (args.size() - 1) / 2;
    size_t chunks = (pairs + kWriteChunkEntries - 1) / kWriteChunkEntries;
    auto swapped_meanwhile = std::make_shared<std::atomic<bool>>(false);
    auto written =
        Barrier::Make(chunks, [swap = std::move(swap), swapped_meanwhile](absl::Status st) mutable {
          if (!st.ok()) return swap(st);
          Reply r;
          r.type = Reply::Type::kInteger;
          r.integer = swapped_meanwhile->load() ? -1 : 1;
          swap(r);
        });
    for (size_t c = 0; c < chunks; ++c) {
      std::vector<std::string> chunk = {run->id()};
      for (size_t i = 1 + 2 * c * kWriteChunkEntries;
           i < std::min(args.size(), 1 + 2 * (c + 1) * kWriteChunkEntries); ++i) {
        chunk.push_back(args[i]);
      }
      client_->Eval(kStageRemap, {tk.merge_staging_remap(run->id()), tk.merge_state()},
                    std::move(chunk), run->deadline,
                    [written, swapped_meanwhile](absl::StatusOr<Reply> r) {
                      if (r.ok() && r->integer == -1) *swapped_meanwhile = true;
                      written->Arrive(r.status());
                    });
    }
  });
  const std::string remaps[2] = {tk.remap(), sk.remap()};
  for (int i = 0; i < 2; ++i) {
    client_->Command({"HGETALL", remaps[i]}, run->deadline, [b, olds, i](absl::StatusOr<Reply> r) {
      if (r.ok()) (*olds)[i] = *std::move(r);
      b->Arrive(r.status());
    });
  }
}

namespace {

// The profile fields the target takes from the source, with the target's values before (for
// an Unmerge): "field<TAB>had<TAB>old<TAB>new" lines, each part C-escaped.
struct ProfileMerge {
  std::vector<std::pair<std::string, std::string>> sets;
  std::string priors;
};

ProfileMerge MergeProfiles(const std::map<std::string, std::string>& target,
                           const std::map<std::string, std::string>& source,
                           const std::vector<std::string>& take) {
  ProfileMerge out;
  std::set<std::string> take_fields;
  for (const std::string& p : take) {
    if (absl::StartsWith(p, "attributes.")) {
      take_fields.insert(absl::StrCat(identity::kAttrPrefix, p.substr(strlen("attributes."))));
    } else {
      take_fields.insert(p);
    }
  }
  auto set = [&](const std::string& field, const std::string& value) {
    auto t = target.find(field);
    bool had = t != target.end();
    if (had && t->second == value) return;
    out.sets.emplace_back(field, value);
    absl::StrAppend(&out.priors, absl::CEscape(field), "\t", had ? "1" : "0", "\t",
                    had ? absl::CEscape(t->second) : "", "\t", absl::CEscape(value), "\n");
  };
  // Attributes stay within the profile limit: the source's fill free places only (the ones
  // left out stay with the source, and come back with an Unmerge).
  int attributes = 0;
  for (const auto& [field, value] : target) {
    if (absl::StartsWith(field, identity::kAttrPrefix)) ++attributes;
  }
  for (const auto& [field, value] : source) {
    bool attribute = absl::StartsWith(field, identity::kAttrPrefix);
    bool plain = field == "display_name" || field == "language" || field == "tier" || attribute;
    if (plain) {
      bool present = target.contains(field);
      if (attribute && !present && attributes >= identity::kMaxProfileAttributes) continue;
      if (!present || take_fields.contains(field)) {
        set(field, value);
        if (attribute && !present) ++attributes;
      }
    } else if (absl::StartsWith(field, identity::kConsentPrefix)) {
      // "<state>:<updated ms>": the later decision wins.
      auto t = target.find(field);
      auto ms = [](const std::string& v) {
        int64_t m = 0;
        size_t colon = v.find(':');
        if (colon != std::string::npos) absl::SimpleAtoi(v.substr(colon + 1), &m);
        return m;
      };
      if (t == target.end() || ms(value) > ms(t->second)) set(field, value);
    } else if (absl::StartsWith(field, identity::kActivityPrefix)) {
      auto t = target.find(field);
      int64_t a = 0, b = 0;
      absl::SimpleAtoi(value, &a);
      if (t != target.end()) absl::SimpleAtoi(t->second, &b);
      if (t == target.end() || a > b) out.sets.emplace_back(field, value);  // derived: no prior
    }
  }
  return out;
}

struct Prior {
  std::string field;
  bool had = false;
  std::string old_value;
  std::string new_value;
};

std::vector<Prior> ParsePriors(absl::string_view blob) {
  std::vector<Prior> out;
  for (absl::string_view line : absl::StrSplit(blob, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, '\t');
    if (parts.size() != 4) continue;
    Prior p;
    if (!absl::CUnescape(parts[0], &p.field) || !absl::CUnescape(parts[2], &p.old_value) ||
        !absl::CUnescape(parts[3], &p.new_value)) {
      continue;
    }
    p.had = parts[1] == "1";
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

namespace {

// The KEYS and trailing ARGV kEngagementMergeLua needs.
void AppendEngagementKeys(const keys::CustomerKeys& source, const keys::CustomerKeys& target,
                          std::vector<std::string>* keys) {
  for (const keys::CustomerKeys& k : {source, target}) {
    for (std::string key : {k.conversation_records(), k.cases(), k.facts(), k.contacts(),
                            k.contact_channels(), k.signals()}) {
      keys->push_back(std::move(key));
    }
  }
  keys->push_back(keys::DuePromisesKey());
}

void AppendEngagementArgs(const std::string& tenant, const std::string& source,
                          const std::string& target, std::vector<std::string>* args) {
  args->push_back(source);
  args->push_back(target);
  args->push_back(tenant);
  args->push_back(keys::TenantKeys(tenant).journey_prefix());
}

}  // namespace

void MergeEngine::Swap(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  auto hashes = std::make_shared<std::vector<Reply>>(4);
  auto b = Barrier::Make(4, [this, run, hashes, sk, tk](absl::Status st) {
    if (!st.ok()) return Fail(run, st);
    std::vector<std::string> take(run->record.take_from_source().begin(),
                                  run->record.take_from_source().end());
    ProfileMerge pm = MergeProfiles(HashFromReply((*hashes)[0]), HashFromReply((*hashes)[1]), take);
    // Conversations open on both sides become one.
    std::map<std::string, std::string> convs = HashFromReply((*hashes)[2]);
    for (const auto& [id, sv] : HashFromReply((*hashes)[3])) {
      auto it = convs.find(id);
      if (it == convs.end()) {
        convs[id] = sv;
        continue;
      }
      std::vector<absl::string_view> a = absl::StrSplit(it->second, '|');
      std::vector<absl::string_view> c = absl::StrSplit(sv, '|');
      int64_t af = 0, al = 0, an = 0, cf = 0, cl = 0, cn = 0;
      if (a.size() != 4 || c.size() != 4 || !absl::SimpleAtoi(a[0], &af) ||
          !absl::SimpleAtoi(a[1], &al) || !absl::SimpleAtoi(a[2], &an) ||
          !absl::SimpleAtoi(c[0], &cf) || !absl::SimpleAtoi(c[1], &cl) ||
          !absl::SimpleAtoi(c[2], &cn)) {
        continue;
      }
      it->second = absl::StrCat(std::min(af, cf), "|", std::max(al, cl), "|", an + cn, "|",
                                cl > al ? c[3] : a[3]);
    }
    std::vector<std::string> args = {run->id(), absl::StrCat(run->plan.size())};
    AppendCounted(&args, pm.sets);
    args.push_back(pm.priors);
    AppendCounted(&args,
                  std::vector<std::pair<std::string, std::string>>(convs.begin(), convs.end()));
    args.push_back(absl::StrCat(run->record.events_moved(), "|", run->record.events_skipped()));
    AppendEngagementArgs(run->tenant, run->source(), run->target(), &args);
    std::vector<std::string> keys = {tk.timeline(),
                                     tk.merge_staging(run->id()),
                                     tk.dedup(),
                                     tk.merge_staging_dedup(run->id()),
                                     tk.merge_state(),
                                     tk.profile(),
                                     tk.conversations(),
                                     tk.remap(),
                                     tk.merge_staging_remap(run->id())};
    AppendEngagementKeys(run->source_keys(), run->target_keys(), &keys);
    client_->Eval(kSwapScript, std::move(keys), std::move(args), run->deadline,
                  [this, run](absl::StatusOr<Reply> r) {
                    if (!r.ok()) return Fail(run, r.status());
                    run->plan.clear();
                    run->target_entries.clear();
                    run->source_entries.clear();
                    Step(run, kIdentifiers);
                  });
  });
  const std::string keys_to_read[4] = {tk.profile(), sk.profile(), tk.conversations(),
                                       sk.conversations()};
  for (int i = 0; i < 4; ++i) {
    client_->Command({"HGETALL", keys_to_read[i]}, run->deadline,
                     [b, hashes, i](absl::StatusOr<Reply> r) {
                       if (r.ok()) (*hashes)[i] = *std::move(r);
                       b->Arrive(r.status());
                     });
  }
}

void MergeEngine::MoveIdentifiers(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command(
      {"HGETALL", sk.identifiers()}, run->deadline, [this, run, tk](absl::StatusOr<Reply> ids) {
        if (!ids.ok()) return Fail(run, ids.status());
        struct Moved {
          std::string field;
          std::string value;
          bool moved = false;
        };
        auto moved = std::make_shared<std::vector<Moved>>();
        for (size_t i = 0; i + 1 < ids->elements.size(); i += 2) {
          v1::LinkEvidence e;
          if (!identity::DecodeEvidence(ids->elements[i + 1].str, &e)) continue;
          e.set_merge_id(WithTag(e.merge_id(), run->id()));  // the chain, this merge last
          e.set_merged_from(run->source());
          moved->push_back({ids->elements[i].str, identity::EncodeEvidence(e), false});
        }
        auto b = Barrier::Make(moved->size(), [this, run, tk, moved](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          std::vector<std::string> args;
          int n = 0;
          for (const auto& m : *moved) {
            if (!m.moved) continue;
            args.push_back(m.field);
            args.push_back(m.value);
            ++n;
          }
          auto next = [this, run](absl::StatusOr<Reply> r) {
            if (!r.ok()) return Fail(run, r.status());
            Step(run, kMark);
          };
          if (args.empty()) return next(Reply{});
          client_->Eval(kAddIdentifiers, {tk.identifiers()}, std::move(args), run->deadline,
                        std::move(next));
        });
        for (size_t i = 0; i < moved->size(); ++i) {
          const std::string& field = (*moved)[i].field;
          size_t colon = field.find(':');
          std::string index =
              keys::IdentifierKey(run->tenant, keys::IdentifierTypeFromName(field.substr(0, colon)),
                                  field.substr(colon + 1));
          // The index first: a crash before the target's list is updated is finished by a rerun,
          // which finds the entry already moved.
          client_->Eval(kMoveIndex, {index}, {run->target(), run->source()}, run->deadline,
                        [b, moved, i](absl::StatusOr<Reply> r) {
                          if (r.ok()) (*moved)[i].moved = r->integer == 1;
                          b->Arrive(r.status());
                        });
        }
      });
}

void MergeEngine::Mark(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command({"HGET", tk.merge_state(), absl::StrCat(run->id(), ":head")}, run->deadline,
                   [this, run, sk](absl::StatusOr<Reply> head) {
                     if (!head.ok()) return Fail(run, head.status());
                     std::string h = head->is_string() ? head->str : "0-0";
                     client_->Eval(kMarkScript, {sk.profile()},
                                   {run->target(), run->id(), h, sk.channel()}, run->deadline,
                                   [this, run](absl::StatusOr<Reply> r) {
                                     if (!r.ok()) return Fail(run, r.status());
                                     Step(run, kFinish);
                                   });
                   });
}

void MergeEngine::Finish(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Eval(kReleaseAndNotify, {tk.profile()}, {run->id(), tk.channel(), "merged"},
                run->deadline, [this, run, sk, tk](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return Fail(run, r.status());
                  std::string score = absl::StrCat(ToMillis(run->record.started_at()));
                  auto b = Barrier::Make(2, [this, run](absl::Status st) {
                    if (!st.ok()) return Fail(run, st);
                    run->record.set_state(v1::MergeRecord::STATE_MERGED);
                    *run->record.mutable_merged_at() = FromMillis(NowMillis());
                    Log(LogLevel::kInfo, "merge.done",
                        {{"tenant", run->tenant},
                         {"merge_id", run->id()},
                         {"source", run->source()},
                         {"target", run->target()},
                         {"events_moved", absl::StrCat(run->record.events_moved())},
                         {"events_skipped", absl::StrCat(run->record.events_skipped())},
                         {"identifiers", absl::StrCat(run->record.source_identifiers_size())}});
                    Step(run, kDone);
                  });
                  for (const auto& k : {sk, tk}) {
                    client_->Command({"ZADD", k.merge_history(), score, run->id()}, run->deadline,
                                     [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
                  }
                });
}

// ---- unmerge steps ----------------------------------------------------------------------------

void MergeEngine::Unmerge(const std::string& tenant, const std::string& merge_id,
                          const std::string& reason, const v1::Actor& actor, absl::Time deadline,
                          Callback<v1::MergeRecord> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("merge_id", merge_id); !st.ok()) return done(st);
  if (absl::Status st = ValidateReason(reason); !st.ok()) return done(st);
  if (absl::Status st = ValidateActor(actor); !st.ok()) return done(st);
  client_->Command(
      {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "step"}, deadline,
      [this, tenant, merge_id, reason, actor, deadline,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        v1::MergeRecord rec;
        if (r->elements.size() != 2 || r->elements[0].is_nil() ||
            !rec.ParseFromString(r->elements[0].str)) {
          return done(absl::NotFoundError(absl::StrCat("merge_id: no merge ", merge_id)));
        }
        switch (rec.state()) {
          case v1::MergeRecord::STATE_MERGING:
            return done(absl::FailedPreconditionError(absl::StrCat(
                "merge_id: merge ", merge_id, " is still running; unmerge it once it is done")));
          case v1::MergeRecord::STATE_UNMERGED:
            return done(absl::FailedPreconditionError(
                absl::StrCat("merge_id: merge ", merge_id, " was already unmerged")));
          case v1::MergeRecord::STATE_UNMERGING:
            return Resume(tenant, merge_id, deadline, std::move(done));
          default:
            break;
        }
        auto run = std::make_shared<Run>();
        run->tenant = tenant;
        run->deadline = deadline;
        run->original_record = r->elements[0].str;
        run->record = std::move(rec);
        run->record.set_state(v1::MergeRecord::STATE_UNMERGING);
        // The reason is masked like every free-text field (the record's own, masked when the
        // merge started, is not masked again).
        v1::MergeRecord unmerge;
        unmerge.set_unmerge_reason(reason);
        privacy::MaskFreeText(privacy::StorageRedactor(), &unmerge);
        run->record.set_unmerge_reason(unmerge.unmerge_reason());
        *run->record.mutable_unmerged_by() = actor;
        run->done = std::move(done);
        // Refuse what the locks would refuse before writing anything.
        auto b = Barrier::Make(2, [this, run](absl::Status st) {
          if (!st.ok()) return run->done(st);
          Log(LogLevel::kInfo, "unmerge.started",
              {{"tenant", run->tenant},
               {"merge_id", run->id()},
               {"source", run->source()},
               {"target", run->target()}});
          client_->Command(
              {"SADD", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", run->id())},
              run->deadline, [this, run](absl::StatusOr<Reply> r) {
                if (!r.ok()) return run->done(r.status());
                Step(run, kULock);
              });
        });
        client_->Command(
            {"HMGET", run->source_keys().profile(), "merged_into", "merge_id", "merge_lock"},
            deadline, [run, b](absl::StatusOr<Reply> r) {
              if (!r.ok()) return b->Arrive(r.status());
              const auto& f = r->elements;
              if (f.size() != 3 || f[0].str != run->target() || f[1].str != run->id()) {
                return b->Arrive(absl::FailedPreconditionError(absl::StrCat(
                    "merge_id: customer ", run->source(), " is no longer merged by ", run->id())));
              }
              if (f[2].is_string()) {
                return b->Arrive(absl::AbortedError(absl::StrCat("customer ", run->source(),
                                                                 " is held by merge ", f[2].str,
                                                                 "; retry shortly")));
              }
              b->Arrive(absl::OkStatus());
            });
        client_->Command(
            {"HMGET", run->target_keys().profile(), "merged_into", "merge_id", "merge_lock"},
            deadline, [run, b](absl::StatusOr<Reply> r) {
              if (!r.ok()) return b->Arrive(r.status());
              const auto& f = r->elements;
              if (f.size() == 3 && f[0].is_string()) {
                return b->Arrive(absl::FailedPreconditionError(
                    absl::StrCat("merge_id: the target ", run->target(), " was since merged into ",
                                 f[0].str, " by merge ", f[1].str, "; unmerge that one first")));
              }
              if (f.size() == 3 && f[2].is_string()) {
                return b->Arrive(absl::AbortedError(absl::StrCat("customer ", run->target(),
                                                                 " is held by merge ", f[2].str,
                                                                 "; retry shortly")));
              }
              b->Arrive(absl::OkStatus());
            });
      });
}

void MergeEngine::UnLock(std::shared_ptr<Run> run) {
  auto abort = [this, run](absl::Status status) {
    // Refused: the merge stays as it was.
    ReleaseLocks(run, [this, run, status] {
      run->step = kDone;
      if (run->original_record.empty()) {  // resumed by recovery: rebuild the record as it was
        run->record.set_state(v1::MergeRecord::STATE_MERGED);
        run->record.clear_unmerge_reason();
        run->record.clear_unmerged_by();
        run->original_record = run->record.SerializeAsString();
      }
      std::vector<std::string> cmd = {"HSET",  keys::MergeKey(run->tenant, run->id()),
                                      "rec",   run->original_record,
                                      "step",  absl::StrCat(kDone),
                                      "phase", "merge"};
      client_->Command(std::move(cmd), run->deadline, [this, run, status](absl::StatusOr<Reply>) {
        client_->Command(
            {"SREM", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", run->id())},
            run->deadline, [run, status](absl::StatusOr<Reply>) { run->done(status); });
      });
    });
  };
  LockBoth(
      run, "unmerge-source", "unmerge-target", [this, run] { Step(run, kUReturn); }, abort);
}

void MergeEngine::Return(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  ReadStream(
      client_, tk.timeline(), run->deadline, [this, run, sk](absl::StatusOr<std::vector<Entry>> t) {
        if (!t.ok()) return Fail(run, t.status());
        run->target_entries = *std::move(t);
        std::vector<const Entry*> tagged;
        for (const Entry& e : run->target_entries) {
          if (HasTag(e.tag, run->id())) tagged.push_back(&e);
        }
        size_t tagged_count = tagged.size();
        size_t chunks = (tagged.size() + kWriteChunkEntries - 1) / kWriteChunkEntries;
        auto b = Barrier::Make(chunks, [this, run, tagged_count](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          // Counted from the target, not from what this run appended, so a rerun after a
          // crash counts the same: the merge's tagged events less the source's own.
          run->record.set_events_returned(std::max<int64_t>(
              0, static_cast<int64_t>(tagged_count) - run->record.events_moved()));
          Step(run, kURemove);
        });
        // Chunks are independent (each appends what the source lacks), so they run together;
        // the source's timeline order among returned events follows their order here.
        for (size_t c = 0; c < chunks; ++c) {
          std::vector<std::string> args;
          for (size_t i = c * kWriteChunkEntries;
               i < std::min(tagged.size(), (c + 1) * kWriteChunkEntries); ++i) {
            args.push_back(tagged[i]->event.event_id());
            args.push_back(tagged[i]->blob);
            args.push_back(AppendedMs(*tagged[i]));
            args.push_back(WithoutTag(tagged[i]->tag, run->id()));
          }
          client_->Eval(kReturnScript, {sk.timeline(), sk.dedup()}, std::move(args), run->deadline,
                        [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
        }
      });
}

void MergeEngine::Remove(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys();
  auto with_entries = [this, run, tk]() {
    std::vector<std::pair<std::string, std::string>> removed;
    std::vector<const Entry*> kept;
    for (const Entry& e : run->target_entries) {
      if (HasTag(e.tag, run->id())) {
        removed.emplace_back(e.id, e.event.event_id());
      } else {
        kept.push_back(&e);
      }
    }
    auto derived = std::make_shared<Derived>(Recompute(kept));
    // The events first, in chunks (each a short script; a rerun finds them gone), then one
    // script restores the profile and sets the recomputed activity and conversations.
    size_t chunks = (removed.size() + kWriteChunkEntries - 1) / kWriteChunkEntries;
    auto b = Barrier::Make(chunks, [this, run, tk, derived](absl::Status st) {
      if (!st.ok()) return Fail(run, st);
      client_->Command(
          {"HGET", tk.merge_state(), absl::StrCat(run->id(), ":prior")}, run->deadline,
          [this, run, tk, derived](absl::StatusOr<Reply> prior) {
            if (!prior.ok()) return Fail(run, prior.status());
            std::vector<std::string> args = {run->id()};
            std::vector<Prior> priors =
                ParsePriors(prior->is_string() ? absl::string_view(prior->str) : "");
            args.push_back(absl::StrCat(priors.size()));
            for (const Prior& p : priors) {
              args.push_back(p.field);
              args.push_back(p.new_value);
              args.push_back(p.had ? "1" : "0");
              args.push_back(p.old_value);
            }
            std::vector<std::pair<std::string, std::string>> act;
            for (const auto& [f, ms] : derived->activity) act.emplace_back(f, absl::StrCat(ms));
            AppendCounted(&args, act);
            AppendCounted(&args, std::vector<std::pair<std::string, std::string>>(
                                     derived->conversations.begin(), derived->conversations.end()));
            AppendEngagementArgs(run->tenant, run->source(), run->target(), &args);
            std::vector<std::string> keys = {tk.merge_state(), tk.profile(), tk.conversations()};
            AppendEngagementKeys(run->source_keys(), run->target_keys(), &keys);
            client_->Eval(kRemoveScript, std::move(keys), std::move(args), run->deadline,
                          [this, run](absl::StatusOr<Reply> r) {
                            if (!r.ok()) return Fail(run, r.status());
                            run->target_entries.clear();
                            Step(run, kUIdentifiers);
                          });
          });
    });
    for (size_t c = 0; c < chunks; ++c) {
      std::vector<std::string> args = {run->id()};
      for (size_t i = c * kWriteChunkEntries;
           i < std::min(removed.size(), (c + 1) * kWriteChunkEntries); ++i) {
        args.push_back(removed[i].first);
        args.push_back(removed[i].second);
      }
      client_->Eval(kRemoveChunk, {tk.timeline(), tk.dedup(), tk.merge_state()}, std::move(args),
                    run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
    }
  };
  if (!run->target_entries.empty()) return with_entries();
  ReadStream(client_, tk.timeline(), run->deadline,
             [this, run, with_entries](absl::StatusOr<std::vector<Entry>> t) mutable {
               if (!t.ok()) return Fail(run, t.status());
               run->target_entries = *std::move(t);
               with_entries();
             });
}

void MergeEngine::ReturnIdentifiers(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command(
      {"HGETALL", tk.identifiers()}, run->deadline, [this, run, sk, tk](absl::StatusOr<Reply> ids) {
        if (!ids.ok()) return Fail(run, ids.status());
        auto fields = std::make_shared<std::vector<std::string>>();
        for (size_t i = 0; i + 1 < ids->elements.size(); i += 2) {
          v1::LinkEvidence e;
          if (identity::DecodeEvidence(ids->elements[i + 1].str, &e) &&
              absl::EndsWith(absl::StrCat(",", e.merge_id()), absl::StrCat(",", run->id()))) {
            fields->push_back(ids->elements[i].str);
          }
        }
        auto b = Barrier::Make(fields->size(), [this, run, sk, tk, fields](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          auto after = [this, run](absl::StatusOr<Reply> r) {
            if (!r.ok()) return Fail(run, r.status());
            Step(run, kURelease);
          };
          if (fields->empty()) return after(Reply{});
          std::vector<std::string> cmd = {"HDEL", tk.identifiers()};
          cmd.insert(cmd.end(), fields->begin(), fields->end());
          client_->Command(std::move(cmd), run->deadline, std::move(after));
        });
        for (const std::string& field : *fields) {
          size_t colon = field.find(':');
          std::string index =
              keys::IdentifierKey(run->tenant, keys::IdentifierTypeFromName(field.substr(0, colon)),
                                  field.substr(colon + 1));
          client_->Eval(kMoveIndex, {index}, {run->source(), run->target()}, run->deadline,
                        [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
        }
      });
}

void MergeEngine::Release(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys();
  // The source's list still holds every identifier it had; drop those it no longer owns
  // (unlinked from the target while merged).
  client_->Command(
      {"HKEYS", sk.identifiers()}, run->deadline, [this, run, sk](absl::StatusOr<Reply> ids) {
        if (!ids.ok()) return Fail(run, ids.status());
        auto owners = std::make_shared<std::vector<std::string>>(ids->elements.size());
        auto fields = std::make_shared<std::vector<std::string>>();
        for (const Reply& f : ids->elements) fields->push_back(f.str);
        auto b = Barrier::Make(fields->size(), [this, run, sk, owners, fields](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          std::vector<std::string> cmd = {"HDEL", sk.identifiers()};
          for (size_t i = 0; i < fields->size(); ++i) {
            if ((*owners)[i] != run->source()) cmd.push_back((*fields)[i]);
          }
          auto next = [this, run, sk](absl::StatusOr<Reply> r) {
            if (!r.ok()) return Fail(run, r.status());
            ReadStream(client_, sk.timeline(), run->deadline,
                       [this, run, sk](absl::StatusOr<std::vector<Entry>> s) {
                         if (!s.ok()) return Fail(run, s.status());
                         std::vector<const Entry*> all;
                         for (const Entry& e : *s) all.push_back(&e);
                         Derived d = Recompute(all);
                         std::vector<std::string> args = {run->id()};
                         std::vector<std::pair<std::string, std::string>> act;
                         for (const auto& [f, ms] : d.activity)
                           act.emplace_back(f, absl::StrCat(ms));
                         AppendCounted(&args, act);
                         AppendCounted(&args, std::vector<std::pair<std::string, std::string>>(
                                                  d.conversations.begin(), d.conversations.end()));
                         client_->Eval(kReleaseSource, {sk.profile(), sk.conversations()},
                                       std::move(args), run->deadline,
                                       [this, run](absl::StatusOr<Reply> r) {
                                         if (!r.ok()) return Fail(run, r.status());
                                         Step(run, kUFinish);
                                       });
                       });
          };
          if (cmd.size() == 2) return next(Reply{});
          client_->Command(std::move(cmd), run->deadline, std::move(next));
        });
        for (size_t i = 0; i < fields->size(); ++i) {
          const std::string& field = (*fields)[i];
          size_t colon = field.find(':');
          client_->Command(
              {"GET", keys::IdentifierKey(run->tenant,
                                          keys::IdentifierTypeFromName(field.substr(0, colon)),
                                          field.substr(colon + 1))},
              run->deadline, [b, owners, i](absl::StatusOr<Reply> r) {
                if (r.ok() && r->is_string()) (*owners)[i] = r->str;
                b->Arrive(r.status());
              });
        }
      });
}

void MergeEngine::UnFinish(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys();
  client_->Eval(kReleaseAndNotify, {tk.profile()}, {run->id(), tk.channel(), "unmerged"},
                run->deadline, [this, run](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return Fail(run, r.status());
                  run->record.set_state(v1::MergeRecord::STATE_UNMERGED);
                  *run->record.mutable_unmerged_at() = FromMillis(NowMillis());
                  Log(LogLevel::kInfo, "unmerge.done",
                      {{"tenant", run->tenant},
                       {"merge_id", run->id()},
                       {"source", run->source()},
                       {"target", run->target()},
                       {"events_returned", absl::StrCat(run->record.events_returned())}});
                  Step(run, kDone);
                });
}

// ---- history and recovery ---------------------------------------------------------------------

void MergeEngine::History(const std::string& tenant, const std::string& customer_id,
                          absl::Time deadline, Callback<std::vector<v1::MergeRecord>> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  keys::CustomerKeys ck(tenant, customer_id);
  // An erased customer's profile is a tombstone holding only erased_at (libs/privacy): it
  // answers NOT_FOUND "was erased" here as on every other read, not an empty history.
  client_->Command(
      {"HMGET", ck.profile(), "created_at", "erased_at"}, deadline,
      [this, tenant, customer_id, ck, deadline,
       done = std::move(done)](absl::StatusOr<Reply> profile) mutable {
        if (!profile.ok()) return done(profile.status());
        if (!profile->is_array() || profile->elements.size() != 2) {
          return done(absl::InternalError("unexpected reply to HMGET of a profile"));
        }
        if (profile->elements[1].is_string()) {
          return done(absl::NotFoundError(absl::StrCat("customer ", customer_id, " was erased")));
        }
        if (!profile->elements[0].is_string()) {
          return done(absl::NotFoundError(absl::StrCat("customer ", customer_id, " not found")));
        }
        client_->Command(
            {"ZREVRANGE", ck.merge_history(), "0", "999"}, deadline,
            [this, tenant, deadline, done = std::move(done)](absl::StatusOr<Reply> ids) mutable {
              if (!ids.ok()) return done(ids.status());
              auto records = std::make_shared<std::vector<v1::MergeRecord>>(ids->elements.size());
              auto shared_done =
                  std::make_shared<Callback<std::vector<v1::MergeRecord>>>(std::move(done));
              auto b = Barrier::Make(ids->elements.size(), [records, shared_done](absl::Status st) {
                if (!st.ok()) return (*shared_done)(st);
                (*shared_done)(std::move(*records));
              });
              for (size_t i = 0; i < ids->elements.size(); ++i) {
                client_->Command({"HGET", keys::MergeKey(tenant, ids->elements[i].str), "rec"},
                                 deadline, [b, records, i](absl::StatusOr<Reply> r) {
                                   if (r.ok() && r->is_string()) {
                                     (*records)[i].ParseFromString(r->str);
                                   }
                                   b->Arrive(r.status());
                                 });
              }
            });
      });
}

void MergeEngine::RecoverPending(bool all, absl::Time deadline, Callback<int> done) {
  client_->Command(
      {"SMEMBERS", keys::PendingMergesKey()}, deadline,
      [this, all, deadline, done = std::move(done)](absl::StatusOr<Reply> members) mutable {
        if (!members.ok()) return done(members.status());
        auto finished = std::make_shared<std::atomic<int>>(0);
        auto shared_done = std::make_shared<Callback<int>>(std::move(done));
        auto b = Barrier::Make(members->elements.size(), [finished, shared_done](absl::Status st) {
          if (!st.ok()) return (*shared_done)(st);
          (*shared_done)(finished->load());
        });
        int64_t now = NowMillis();
        for (const Reply& m : members->elements) {
          std::pair<std::string, std::string> parts = absl::StrSplit(m.str, '/');
          std::string tenant = parts.first, merge_id = parts.second;
          client_->Command(
              {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "updated_at"}, deadline,
              [this, all, now, tenant, merge_id, deadline, b, finished,
               member = m.str](absl::StatusOr<Reply> r) {
                if (!r.ok()) return b->Arrive(r.status());
                if (r->elements.size() != 2 || r->elements[0].is_nil()) {
                  // A record refused before it held anything, or already forgotten.
                  client_->Command({"SREM", keys::PendingMergesKey(), member}, deadline,
                                   [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
                  return;
                }
                int64_t updated = 0;
                absl::SimpleAtoi(r->elements[1].str, &updated);
                if (!all && now - updated < absl::ToInt64Milliseconds(kRecoveryAfter)) {
                  return b->Arrive(absl::OkStatus());  // probably still running somewhere
                }
                Log(LogLevel::kInfo, "merge.recovering",
                    {{"tenant", tenant}, {"merge_id", merge_id}});
                Resume(tenant, merge_id, deadline,
                       [b, finished, merge_id](absl::StatusOr<v1::MergeRecord> rec) {
                         if (rec.ok()) {
                           ++*finished;
                         } else if (rec.status().code() == absl::StatusCode::kUnavailable ||
                                    rec.status().code() == absl::StatusCode::kDeadlineExceeded) {
                           Log(LogLevel::kWarning, "merge.recovery_failed",
                               {{"merge_id", merge_id}, {"error", rec.status().ToString()}});
                         } else {
                           // Refused at its lock step (merge.refused says why): dropped.
                           Log(LogLevel::kInfo, "merge.recovery_dropped",
                               {{"merge_id", merge_id}, {"reason", rec.status().ToString()}});
                         }
                         b->Arrive(absl::OkStatus());
                       });
              });
        }
      });
}

}  // namespace onestory::merge
