#include "libs/engagement/case_store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/event_builder.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/free_text.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;
using redis::Script;

constexpr char kCaseLua[] = R"lua(
-- The tenant's journey: nil when none, else the list of stages.
local function os_journey()
  local s = redis.call('GET', K.jst)
  if not s then return nil end
  local out = {}
  for st in string.gmatch(s, '[^\n]+') do out[#out + 1] = st end
  return out
end

-- nil when `stage` may be used, else the error reply.
local function os_check_stage(stage)
  local j = os_journey()
  if not j then
    return redis.error_reply('OS_CONFLICT stage: the tenant has no journey; set one with ' ..
                             'CaseService.SetJourney or leave stage empty')
  end
  for _, s in ipairs(j) do
    if s == stage then return nil end
  end
  return redis.error_reply('OS_INVALID stage: "' .. stage .. '" is not a stage of the ' ..
                           "tenant's journey (" .. table.concat(j, ', ') .. ')')
end

-- A case's entry in the due-promise index names the customer the script runs for (a merge
-- target when the request named its source).
local function os_due_member(tenant, id) return tenant .. '|' .. P.cid .. '|' .. id end

local function os_no_case(id)
  return redis.error_reply('OS_NOT_FOUND case_id: customer ' .. P.cid .. ' has no case ' .. id)
end
)lua";

// ARGV: case id, topic, stage ('' = the journey's first), owner type (0: none), owner id,
// conversation id, actor type, actor id, then the event (8).
// Returns {already (0|1), record, stream id, stored blob}.
const Script kOpen("case.open", absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua,
                                             kEngagementLua, kCaseLua, R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local id, stage, conv = ARGV[13], ARGV[15], ARGV[18]
local ev = os_event_arg(21)
local rec = redis.call('HGET', K.ca, id)
if rec then
  if cjson.decode(rec).s ~= 'o' then
    return redis.error_reply('OS_CONFLICT case_id: case ' .. id ..
                             ' is resolved; open a new case with another id')
  end
  return os_done_before(ev.eid, rec) or {1, rec, '', ''}
end
if stage ~= '' then
  local serr = os_check_stage(stage)
  if serr then return serr end
else
  local j = os_journey()
  if j then stage = j[1] end
end
local open = 0
local all = redis.call('HGETALL', K.ca)
for i = 1, #all, 2 do
  if cjson.decode(all[i + 1]).s == 'o' then open = open + 1 end
end
if open >= 100 then
  return redis.error_reply('OS_LIMIT case_id: customer ' .. P.cid ..
                           ' has 100 open cases; resolve some first')
end
local out, e2 = os_append({ev})
if not out then return e2 end
local c = {tp = ARGV[14], sg = '', s = 'o', ot = tonumber(ARGV[16]), oi = ARGV[17], op = P.now,
           se = P.now, up = P.now, rs = 0, rn = '', pt = '', pb = 0, pm = 0, mt = 0, mi = '',
           nc = 1, rc = 0, sw = 0, lc = ev.ch, rct = {ev.occ}, oh = {}, ohn = 0, ln = ''}
if c.ot ~= 0 then
  c.oh = {{ft = 0, fi = '', tt = c.ot, ti = c.oi, r = 'first owner', bt = tonumber(ARGV[19]),
           bi = ARGV[20], at = P.now}}
  c.ohn = 1
end
os_stage_enter(id, c, stage)
rec = cjson.encode(c)
redis.call('HSET', K.ca, id, rec)
if conv ~= '' then
  local r = redis.call('HGET', K.cs, conv)
  if r then
    r = cjson.decode(r)
    if r.ca == '' then
      r.ca = id
      redis.call('HSET', K.cs, conv, cjson.encode(r))
    end
  end
end
-- Forget resolved cases after 90 days, when the list grows long.
if #all > 300 then
  for i = 1, #all, 2 do
    local x = cjson.decode(all[i + 1])
    if x.s ~= 'o' and x.rs < P.now - 90 * DAY then redis.call('HDEL', K.ca, all[i]) end
  end
end
return {0, rec, out[1][1], ''}
)lua"));

// ARGV: case id, stage ('' none), owner type (0 none), owner id, reason, promise text,
// promised_by ms (0 none), note, actor type, actor id, tenant, the event (8), the
// note's visibility.
// Returns {duplicate (0|1), record, stream id, stored blob}.
const Script kUpdate("case.update", absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua,
                                                 kEngagementLua, kCaseLua, R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local id, stage, owner_t, owner_i = ARGV[13], ARGV[14], tonumber(ARGV[15]), ARGV[16]
local reason, pb = ARGV[17], tonumber(ARGV[19])
local ev = os_event_arg(24)
local rec = redis.call('HGET', K.ca, id)
local again = os_done_before(ev.eid, rec)
if again then return again end
if not rec then return os_no_case(id) end
local c = cjson.decode(rec)
if c.s ~= 'o' then
  return redis.error_reply('OS_CONFLICT case_id: case ' .. id .. ' is resolved')
end
if stage ~= '' then
  local serr = os_check_stage(stage)
  if serr then return serr end
end
if owner_t ~= 0 and c.ot ~= 0 and reason == '' and (c.ot ~= owner_t or c.oi ~= owner_i) then
  return redis.error_reply('OS_INVALID reassign_reason: required to reassign case ' .. id ..
                           ' from ' .. c.ot .. ':' .. c.oi)
end
local out, e2 = os_append({ev})
if not out then return e2 end
c = cjson.decode(redis.call('HGET', K.ca, id))
if stage ~= '' and stage ~= c.sg then
  os_stage_leave(id, c)
  os_stage_enter(id, c, stage)
end
if owner_t ~= 0 and (c.ot ~= owner_t or c.oi ~= owner_i) then
  local oh = c.oh
  if oh[1] == nil then oh = {} end
  oh[#oh + 1] = {ft = c.ot, fi = c.oi, tt = owner_t, ti = owner_i, r = reason,
                 bt = tonumber(ARGV[21]), bi = ARGV[22], at = P.now}
  while #oh > 50 do table.remove(oh, 1) end
  c.oh = oh
  c.ohn = c.ohn + 1
  c.ot = owner_t
  c.oi = owner_i
end
-- Updates are counted: a promise is overdue only when no update followed it (a count, not a
-- time, so an update in the same millisecond or from a server with a slower clock counts).
c.uc = (c.uc or 0) + 1
if pb > 0 then
  c.pu = c.uc
  c.pt = ARGV[18]
  c.pte = ev.eid  -- the event that states it: a redaction of it clears the text (libs/privacy)
  c.pb = pb
  c.pm = P.now
  c.mt = tonumber(ARGV[21])
  c.mi = ARGV[22]
  redis.call('ZADD', K.due, pb, os_due_member(ARGV[23], id))
end
if ARGV[20] ~= '' then
  c.ln = ARGV[20]
  c.lv = tonumber(ARGV[32])
  c.le = ev.eid  -- likewise for the note
end
c.up = P.now
rec = cjson.encode(c)
redis.call('HSET', K.ca, id, rec)
return {0, rec, out[1][1], ''}
)lua"));

// ARGV: case id, resolution, tenant, then the event (8).
// Returns {duplicate (0|1), record, stream id, stored blob}.
const Script kResolve("case.resolve", absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua,
                                                   kEngagementLua, kCaseLua, R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local id = ARGV[13]
local ev = os_event_arg(16)
local rec = redis.call('HGET', K.ca, id)
local again = os_done_before(ev.eid, rec)
if again then return again end
if not rec then return os_no_case(id) end
local c = cjson.decode(rec)
if c.s ~= 'o' then return {1, rec, '', ''} end
local out, e2 = os_append({ev})
if not out then return e2 end
c = cjson.decode(redis.call('HGET', K.ca, id))
os_stage_leave(id, c)
c.s = 'r'
c.rs = P.now
c.rn = ARGV[14]
c.up = P.now
rec = cjson.encode(c)
redis.call('HSET', K.ca, id, rec)
redis.call('ZREM', K.due, os_due_member(ARGV[15], id))
return {0, rec, out[1][1], ''}
)lua"));

// ARGV: case id. Returns the record.
const Script kGet("case.get", absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua,
                                           kEngagementLua, kCaseLua, R"lua(
local err = os_guard(K.p, P.cid, false)
if err then return err end
local rec = redis.call('HGET', K.ca, ARGV[13])
if not rec then return os_no_case(ARGV[13]) end
return rec
)lua"));

// KEYS: stages. ARGV: journey prefix, then the stages. Refuses to drop a stage with open cases.
const Script kSetJourney("journey.set", R"lua(
local old = redis.call('GET', KEYS[1])
local keep = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
if old then
  for st in string.gmatch(old, '[^\n]+') do
    if not keep[st] then
      local n = redis.call('ZCARD', ARGV[1] .. 'open:' .. st)
      if n > 0 then
        return redis.error_reply('OS_CONFLICT stages: stage "' .. st .. '" still has ' .. n ..
                                 ' open cases; move or resolve them before removing it')
      end
    end
  end
end
redis.call('SET', KEYS[1], table.concat(ARGV, '\n', 2))
return 1
)lua");

// KEYS: stages, counters. ARGV: journey prefix.
// Returns per stage {stage, open count, middle entry times..., '|', completed stays...,
// '|', entered, repeats, switches}.
const Script kJourneyStats("journey.stats", R"lua(
local s = redis.call('GET', KEYS[1])
if not s then return {} end
local out = {}
for st in string.gmatch(s, '[^\n]+') do
  local open = ARGV[1] .. 'open:' .. st
  local n = redis.call('ZCARD', open)
  local row = {st, n}
  if n > 0 then
    local mid = redis.call('ZRANGE', open, math.floor((n - 1) / 2), math.floor(n / 2),
                           'WITHSCORES')
    for i = 2, #mid, 2 do row[#row + 1] = mid[i] end
  end
  row[#row + 1] = '|'
  for _, d in ipairs(redis.call('LRANGE', ARGV[1] .. 'dur:' .. st, 0, -1)) do
    row[#row + 1] = d
  end
  row[#row + 1] = '|'
  local c = redis.call('HMGET', KEYS[2], st .. ':entered', st .. ':repeats', st .. ':switches')
  for i = 1, 3 do row[#row + 1] = c[i] or '0' end
  out[#out + 1] = row
end
return out
)lua");

template <typename Response>
void CaseReply(const std::string& case_id, absl::StatusOr<ScriptResult> r,
               const std::shared_ptr<v1::Event>& event, Callback<Response>& done,
               absl::AnyInvocable<void(Response*, bool)> set_flag) {
  if (!r.ok()) return done(r.status());
  const Reply& rep = r->reply;
  if (!rep.is_array() || rep.elements.size() < 4) {
    return done(absl::InternalError("unexpected reply from case script"));
  }
  Response resp;
  bool again = rep.elements[0].integer == 1;
  set_flag(&resp, again);
  absl::StatusOr<google::protobuf::Struct> rec = ParseRecord(rep.elements[1].str);
  if (!rec.ok()) return done(rec.status());
  *resp.mutable_case_() = CaseFromRecord(case_id, r->customer_id, *rec);
  if (!rep.elements[2].str.empty()) {
    absl::StatusOr<v1::Event> e = StoredEvent(r->customer_id, rep.elements[2].str,
                                              rep.elements[3].str, again ? nullptr : event.get());
    if (!e.ok()) return done(e.status());
    *resp.mutable_event() = *std::move(e);
  }
  done(std::move(resp));
}

// The journey check of kCaseLua (os_check_stage), for a customer not created yet.
absl::StatusOr<bool> CheckStage(const std::string* journey, const std::string& stage) {
  if (journey == nullptr) {
    return absl::FailedPreconditionError(
        "stage: the tenant has no journey; set one with CaseService.SetJourney or leave stage "
        "empty");
  }
  std::vector<std::string> stages = absl::StrSplit(*journey, '\n', absl::SkipEmpty());
  if (std::find(stages.begin(), stages.end(), stage) != stages.end()) return true;
  return absl::InvalidArgumentError(absl::StrCat("stage: \"", stage,
                                                 "\" is not a stage of the tenant's journey (",
                                                 absl::StrJoin(stages, ", "), ")"));
}

absl::Status ValidateCaseId(const std::string& id, bool allow_empty) {
  return ValidateToken("case_id", id, timeline::kMaxRefIdBytes, allow_empty);
}

}  // namespace

void CaseStore::Open(const v1::OpenCaseRequest& sent, absl::Time deadline,
                     Callback<v1::OpenCaseResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateCaseId(sent.case_id(), true);
  if (st.ok() && sent.topic().empty()) st = absl::InvalidArgumentError("topic: required");
  if (st.ok()) st = ValidateText("topic", sent.topic(), kMaxTopicBytes, false);
  if (st.ok() && !sent.stage().empty()) st = ValidateStage("stage", sent.stage());
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateActor("owner", sent.owner(), sent.has_owner());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, true);
  }
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::OpenCaseRequest req = privacy::MaskedForStorage(sent);
  std::string id = req.case_id().empty() ? NewRandomId("case_") : req.case_id();
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("co:", id));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CASE_OPENED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(absl::StrCat("case opened: ", req.topic()));
  event->set_conversation_id(req.conversation_id());
  event->set_case_id(id);
  event->set_visibility(req.visibility());
  if (!req.stage().empty()) (*event->mutable_attributes())["stage"] = req.stage();
  if (req.has_owner()) (*event->mutable_attributes())["owner"] = ActorName(req.owner());
  std::vector<std::string> args = {id,
                                   req.topic(),
                                   req.stage(),
                                   absl::StrCat(static_cast<int>(req.owner().type())),
                                   req.owner().id(),
                                   req.conversation_id(),
                                   absl::StrCat(static_cast<int>(req.actor().type())),
                                   req.actor().id()};
  timeline::AppendEventArgs(*event, &args);
  // Before creating a customer for this case: the stage must fit the tenant's journey.
  redis::Client* client = ctx_.client;
  std::string tenant = req.tenant();
  std::string stage = req.stage();
  BeforeCreate check_stage = nullptr;
  if (!stage.empty()) {
    check_stage = [client, tenant, stage, deadline](Callback<bool> cb) {
      client->Command({"GET", keys::TenantKeys(tenant).journey_stages()}, deadline,
                      [stage, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                        if (!r.ok()) return cb(r.status());
                        cb(CheckStage(r->is_nil() ? nullptr : &r->str, stage));
                      });
    };
  }
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), req.create_if_missing(), kOpen, std::move(args), now,
      deadline,
      [id, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        CaseReply<v1::OpenCaseResponse>(
            id, std::move(r), event, done,
            [](v1::OpenCaseResponse* resp, bool again) { resp->set_already_open(again); });
      },
      std::move(check_stage));
}

void CaseStore::Update(const v1::UpdateCaseRequest& sent, absl::Time deadline,
                       Callback<v1::UpdateCaseResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateCaseId(sent.case_id(), false);
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok() && !sent.stage().empty()) st = ValidateStage("stage", sent.stage());
  if (st.ok()) st = ValidateActor("owner", sent.owner(), sent.has_owner());
  if (st.ok()) st = ValidateText("reassign_reason", sent.reassign_reason(), kMaxReasonBytes);
  if (st.ok()) st = ValidateText("promise", sent.promise(), timeline::kMaxSummaryBytes);
  if (st.ok() && sent.has_promised_by()) {
    st = ValidateFuture("promised_by", sent.promised_by(), now);
  }
  if (st.ok() && !sent.promise().empty() && !sent.has_promised_by()) {
    st = absl::InvalidArgumentError("promised_by: required with promise (by when it is kept)");
  }
  if (st.ok() && sent.has_promised_by() && sent.promise().empty()) {
    st = absl::InvalidArgumentError("promise: required with promised_by (what was promised)");
  }
  if (st.ok()) st = ValidateText("note", sent.note(), kMaxNoteBytes);
  if (st.ok()) st = ValidateToken("request_id", sent.request_id(), timeline::kMaxRefIdBytes, true);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (st.ok() && sent.stage().empty() && !sent.has_owner() && !sent.has_promised_by() &&
      sent.note().empty()) {
    st = absl::InvalidArgumentError(
        "stage, owner, promise, note: nothing to change; set at least one");
  }
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::UpdateCaseRequest req = privacy::MaskedForStorage(sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(
      absl::StrCat("cu:", req.request_id().empty() ? NewRandomId("") : req.request_id()));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CASE_UPDATE);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  std::vector<std::string> what;
  auto& attrs = *event->mutable_attributes();
  if (!req.stage().empty()) {
    what.push_back(absl::StrCat("stage ", req.stage()));
    attrs["stage"] = req.stage();
  }
  if (req.has_owner()) {
    what.push_back(absl::StrCat("owner ", ActorName(req.owner())));
    attrs["owner"] = ActorName(req.owner());
    if (!req.reassign_reason().empty()) attrs["reassign_reason"] = req.reassign_reason();
  }
  if (req.has_promised_by()) {
    what.push_back(absl::StrCat("promise \"", req.promise(), "\""));
    attrs["promise"] = req.promise();
    attrs["promised_by"] = google::protobuf::util::TimeUtil::ToString(req.promised_by());
  }
  if (!req.note().empty()) what.push_back("note");
  event->set_summary(absl::StrCat("case updated: ", absl::StrJoin(what, ", ")));
  event->set_body(req.note());
  event->set_case_id(req.case_id());
  event->set_visibility(req.visibility());
  std::vector<std::string> args = {
      req.case_id(),
      req.stage(),
      absl::StrCat(static_cast<int>(req.owner().type())),
      req.owner().id(),
      req.reassign_reason(),
      req.promise(),
      absl::StrCat(req.has_promised_by() ? ToMillis(req.promised_by()) : 0),
      req.note(),
      absl::StrCat(static_cast<int>(req.actor().type())),
      req.actor().id(),
      req.tenant()};
  timeline::AppendEventArgs(*event, &args);
  args.push_back(absl::StrCat(static_cast<int>(req.visibility())));
  std::string id = req.case_id();
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), false, kUpdate, std::move(args), now, deadline,
      [id, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        CaseReply<v1::UpdateCaseResponse>(
            id, std::move(r), event, done,
            [](v1::UpdateCaseResponse* resp, bool again) { resp->set_duplicate(again); });
      });
}

void CaseStore::Resolve(const v1::ResolveCaseRequest& sent, absl::Time deadline,
                        Callback<v1::ResolveCaseResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateCaseId(sent.case_id(), false);
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateText("resolution", sent.resolution(), kMaxReasonBytes);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::ResolveCaseRequest req = privacy::MaskedForStorage(sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("cr:", req.case_id()));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CASE_RESOLVED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(req.resolution().empty() ? std::string("case resolved")
                                              : absl::StrCat("case resolved: ", req.resolution()));
  event->set_case_id(req.case_id());
  event->set_visibility(req.visibility());
  std::string id = req.case_id();
  std::vector<std::string> args = {id, req.resolution(), req.tenant()};
  timeline::AppendEventArgs(*event, &args);
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), false, kResolve, std::move(args), now, deadline,
      [id, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        CaseReply<v1::ResolveCaseResponse>(
            id, std::move(r), event, done,
            [](v1::ResolveCaseResponse* resp, bool again) { resp->set_duplicate(again); });
      });
}

void CaseStore::Get(const v1::GetCaseRequest& req, absl::Time deadline, Callback<v1::Case> done) {
  absl::Status st = ValidateTenant(req.tenant());
  if (st.ok()) st = ValidateCaseId(req.case_id(), false);
  absl::StatusOr<v1::Audience> audience =
      st.ok() ? timeline::ReaderAudience("audience", req.audience()) : st;
  if (!audience.ok()) return done(audience.status());
  std::string id = req.case_id();
  v1::Audience reader = *audience;
  RunCustomerScript(ctx_, req.tenant(), req.customer(), false, kGet, {id}, NowMillis(), deadline,
                    [id, reader, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                      if (!r.ok()) return done(r.status());
                      absl::StatusOr<google::protobuf::Struct> rec = ParseRecord(r->reply.str);
                      if (!rec.ok()) return done(rec.status());
                      v1::Case c = CaseFromRecord(id, r->customer_id, *rec);
                      if (!timeline::VisibleTo(c.last_note_visibility(), reader)) {
                        c.clear_last_note();
                        c.clear_last_note_visibility();
                      }
                      done(std::move(c));
                    });
}

void CaseStore::SetJourney(const v1::SetJourneyRequest& req, absl::Time deadline,
                           Callback<v1::Journey> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  if (req.stages().empty() || req.stages_size() > kMaxStages) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("stages: 1-", kMaxStages, " stages, in journey order")));
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < req.stages_size(); ++i) {
    std::string f = absl::StrCat("stages[", i, "]");
    if (absl::Status st = ValidateStage(f, req.stages(i)); !st.ok()) return done(st);
    if (!seen.insert(req.stages(i)).second) {
      return done(absl::InvalidArgumentError(absl::StrCat(f, ": repeats an earlier stage")));
    }
  }
  keys::TenantKeys tk(req.tenant());
  std::vector<std::string> args = {tk.journey_prefix()};
  args.insert(args.end(), req.stages().begin(), req.stages().end());
  v1::Journey journey;
  *journey.mutable_stages() = req.stages();
  ctx_.client->Eval(kSetJourney, {tk.journey_stages()}, std::move(args), deadline,
                    [journey, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      done(journey);
                    });
}

void CaseStore::GetJourney(const v1::GetJourneyRequest& req, absl::Time deadline,
                           Callback<v1::Journey> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  ctx_.client->Command({"GET", keys::TenantKeys(req.tenant()).journey_stages()}, deadline,
                       [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                         if (!r.ok()) return done(r.status());
                         v1::Journey j;
                         if (!r->is_nil()) {
                           for (absl::string_view s : absl::StrSplit(r->str, '\n')) {
                             if (!s.empty()) j.add_stages(std::string(s));
                           }
                         }
                         done(std::move(j));
                       });
}

void CaseStore::GetJourneyStats(const v1::GetJourneyStatsRequest& req, absl::Time deadline,
                                Callback<v1::GetJourneyStatsResponse> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  keys::TenantKeys tk(req.tenant());
  ctx_.client->Eval(
      kJourneyStats, {tk.journey_stages(), tk.journey_counters()}, {tk.journey_prefix()}, deadline,
      [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        int64_t now = NowMillis();
        v1::GetJourneyStatsResponse resp;
        for (const Reply& row : r->elements) {
          const auto& e = row.elements;
          if (e.size() < 7) return done(absl::InternalError("unexpected journey stats reply"));
          v1::StageStats* s = resp.add_stages();
          s->set_stage(e[0].str);
          s->set_open_cases(e[1].integer);
          size_t i = 2;
          std::vector<int64_t> entered;
          for (; i < e.size() && e[i].str != "|"; ++i) {
            double ms = 0;
            if (absl::SimpleAtod(e[i].str, &ms)) entered.push_back(static_cast<int64_t>(ms));
          }
          if (!entered.empty()) {
            int64_t median = 0;
            for (int64_t t : entered) median += now - t;
            median /= static_cast<int64_t>(entered.size());
            *s->mutable_median_time_in_stage() =
                google::protobuf::util::TimeUtil::MillisecondsToDuration(
                    std::max<int64_t>(0, median));
          }
          std::vector<int64_t> stays;
          for (++i; i < e.size() && e[i].str != "|"; ++i) {
            int64_t ms = 0;
            if (absl::SimpleAtoi(e[i].str, &ms)) stays.push_back(ms);
          }
          if (!stays.empty()) {
            std::sort(stays.begin(), stays.end());
            size_t n = stays.size();
            int64_t median = n % 2 == 1 ? stays[n / 2] : (stays[n / 2 - 1] + stays[n / 2]) / 2;
            *s->mutable_median_completed_time_in_stage() =
                google::protobuf::util::TimeUtil::MillisecondsToDuration(median);
          }
          int64_t counts[3] = {0, 0, 0};
          for (int k = 0; k < 3 && i + 1 + k < e.size(); ++k) {
            absl::SimpleAtoi(e[i + 1 + k].str, &counts[k]);
          }
          s->set_entered(counts[0]);
          s->set_repeat_contacts(counts[1]);
          s->set_channel_switches(counts[2]);
        }
        done(std::move(resp));
      });
}

}  // namespace onestory::engagement
