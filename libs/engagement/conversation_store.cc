#include "libs/engagement/conversation_store.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/event_builder.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;
using redis::Script;

// Facts, shared by Handoff and RecordFacts. Each fact is 8 ARGV from b: type, name, value,
// expires ms (0: never), due ms (0: none), case id, conversation id, visibility.
constexpr int kArgsPerFact = 8;
constexpr char kFactsLua[] = R"lua(
-- nil when the facts may be written, else the error reply (checked before anything changes).
-- `field` names the request's list of facts in errors ("facts", "collected").
local function os_check_facts(b, n, field)
  for i = 0, n - 1 do
    local ca = ARGV[b + i * 8 + 5]
    if ca ~= '' and redis.call('HEXISTS', K.ca, ca) == 0 then
      return redis.error_reply('OS_NOT_FOUND ' .. field .. '[' .. i .. '].case_id: customer ' ..
                               P.cid .. ' has no case ' .. ca)
    end
  end
  local live = {}
  local count = 0
  local all = redis.call('HGETALL', K.fa)
  for i = 1, #all, 2 do
    local f = cjson.decode(all[i + 1])
    if f.ex == 0 or f.ex > P.now then live[all[i]] = true; count = count + 1 end
  end
  for i = 0, n - 1 do
    local key = ARGV[b + i * 8] .. ':' .. ARGV[b + i * 8 + 1]
    if not live[key] then live[key] = true; count = count + 1 end
  end
  if count > 200 then
    return redis.error_reply('OS_LIMIT ' .. field .. ': customer ' .. P.cid .. ' would have ' ..
                             count ..
                             ' current facts; at most 200 (expired facts do not count)')
  end
  return nil
end

-- Writes (supersedes) the facts; returns their stored JSON, in order. Expired facts are dropped.
-- Each fact names the event that stated its value (ev) and the one that stated its previous
-- value (pe): a redaction of that event clears the value (libs/privacy).
local function os_write_facts(b, n, who_t, who_i, ch, conv, eid)
  local all = redis.call('HGETALL', K.fa)
  for i = 1, #all, 2 do
    local f = cjson.decode(all[i + 1])
    if f.ex ~= 0 and f.ex <= P.now then redis.call('HDEL', K.fa, all[i]) end
  end
  local stored = {}
  for i = 0, n - 1 do
    local o = b + i * 8
    local key = ARGV[o] .. ':' .. ARGV[o + 1]
    local f = {t = tonumber(ARGV[o]), n = ARGV[o + 1], v = ARGV[o + 2], ex = tonumber(ARGV[o + 3]),
               du = tonumber(ARGV[o + 4]), ca = ARGV[o + 5], cv = ARGV[o + 6],
               vi = tonumber(ARGV[o + 7]), rt = who_t, ri = who_i, ch = ch, ra = P.now,
               fa = P.now, ts = 1, pv = '', ev = eid, pe = ''}
    if f.cv == '' then f.cv = conv end
    local old = redis.call('HGET', K.fa, key)
    if old then
      old = cjson.decode(old)
      f.fa = old.fa
      f.ts = old.ts + 1
      f.mg = old.mg  -- a fact a merge brought goes back with an Unmerge, restated or not
      if old.v ~= f.v then
        f.pv, f.pe = old.v, old.ev or ''
      else
        f.pv, f.pe = old.pv, old.pe or ''
      end
    end
    stored[#stored + 1] = cjson.encode(f)
    redis.call('HSET', K.fa, key, stored[#stored])
  end
  return stored
end

-- The current JSON of facts named by the request (for a retry's answer).
local function os_read_facts(b, n)
  local out = {}
  for i = 0, n - 1 do
    out[#out + 1] = redis.call('HGET', K.fa, ARGV[b + i * 8] .. ':' .. ARGV[b + i * 8 + 1]) or ''
  end
  return out
end

local function os_no_conversation(conv)
  return redis.error_reply('OS_NOT_FOUND conversation_id: customer ' .. P.cid ..
                           ' has no conversation ' .. conv)
end
)lua";

// ARGV: conversation, served_by type, served_by id, case id, then the event (8).
// Returns {already (0|1), record, stream id, stored blob or repeat JSON}.
const Script kStart("conversation.start",
                    absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua, kEngagementLua,
                                 kFactsLua, R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local conv, case_id = ARGV[13], ARGV[16]
local ev = os_event_arg(17)
local rec = redis.call('HGET', K.cs, conv)
if rec and cjson.decode(rec).s == 'e' then
  return redis.error_reply('OS_CONFLICT conversation_id: conversation ' .. conv ..
                           ' has ended; start a new one with another id')
end
local again = os_done_before(ev.eid, rec)
if again then return again end
if case_id ~= '' then
  local c = os_case_get(case_id)
  if not c then
    return redis.error_reply('OS_NOT_FOUND case_id: customer ' .. P.cid .. ' has no case ' ..
                             case_id)
  end
  if c.s ~= 'o' then
    return redis.error_reply('OS_CONFLICT case_id: case ' .. case_id .. ' is resolved')
  end
end
local out, e2 = os_append({ev})
if not out then return e2 end
rec = redis.call('HGET', K.cs, conv)
local r
if rec then
  r = cjson.decode(rec)
else
  -- Seen before conversation records existed: no contact to count now.
  r = {ch = ev.ch, s = 'o', ca = case_id, st = ev.occ, en = 0, h = 0, oc = '', wc = '',
       rp = false}
end
r.bt = tonumber(ARGV[14])
r.bi = ARGV[15]
if r.ca == '' then r.ca = case_id end
rec = cjson.encode(r)
redis.call('HSET', K.cs, conv, rec)
local rep = ''
if P.rep then rep = cjson.encode(P.rep) end
return {0, rec, out[1][1], rep}
)lua"));

// ARGV: conversation, from type, from id, to type, to id, to channel (0: same), fact count, the
// event (8), the facts. The event has no channel when to_channel is 0, and no case id: both are
// the conversation's and are added here.
// Returns {duplicate (0|1), record, stream id, stored blob, facts JSON...}.
const Script kHandoff("conversation.handoff",
                      absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua, kEngagementLua,
                                   kFactsLua,
                                   R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local conv, n = ARGV[13], tonumber(ARGV[19])
local ev = os_event_arg(20)
local rec = redis.call('HGET', K.cs, conv)
local again = os_done_before(ev.eid, rec)
if again then
  for _, f in ipairs(os_read_facts(28, n)) do again[#again + 1] = f end
  return again
end
if not rec then return os_no_conversation(conv) end
local r = cjson.decode(rec)
if r.s == 'e' then
  return redis.error_reply('OS_CONFLICT conversation_id: conversation ' .. conv ..
                           ' has ended; start a new conversation')
end
local from_t, from_i = tonumber(ARGV[14]), ARGV[15]
if r.bt ~= 0 and (r.bt ~= from_t or r.bi ~= from_i) then
  return redis.error_reply('OS_CONFLICT from: conversation ' .. conv .. ' is served by ' ..
                           r.bt .. ':' .. r.bi .. ', not ' .. from_t .. ':' .. from_i)
end
local ferr = os_check_facts(28, n, 'collected')
if ferr then return ferr end
local ch = tonumber(ARGV[18])
if ch == 0 then
  ch = r.ch
  ev.blob = ev.blob .. os_pb_int(2, ch)
end
ev.ch = ch
if r.ca ~= '' then
  ev.case = r.ca
  ev.blob = ev.blob .. os_pb_str(10, r.ca)
end
local out, e2 = os_append({ev})
if not out then return e2 end
r = cjson.decode(redis.call('HGET', K.cs, conv))
r.h = r.h + 1
r.bt = tonumber(ARGV[16])
r.bi = ARGV[17]
if ch ~= r.ch and r.ca ~= '' then
  local c = os_case_get(r.ca)
  if c and c.s == 'o' then
    os_case_channel(c, ch)
    os_case_put(r.ca, c)
  end
end
r.ch = ch
rec = cjson.encode(r)
redis.call('HSET', K.cs, conv, rec)
local res = {0, rec, out[1][1], ''}
for _, f in ipairs(os_write_facts(28, n, from_t, from_i, ch, conv, ev.eid)) do
  res[#res + 1] = f
end
return res
)lua"));

// ARGV: conversation, outcome, wrap-up code, then the event (8) without channel and case id.
// Returns {duplicate (0|1), record, stream id, stored blob}.
const Script kEnd("conversation.end", absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua,
                                                   kEngagementLua, kFactsLua, R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local conv = ARGV[13]
local ev = os_event_arg(16)
local rec = redis.call('HGET', K.cs, conv)
local again = os_done_before(ev.eid, rec)
if again then return again end
if not rec then return os_no_conversation(conv) end
local r = cjson.decode(rec)
if r.s == 'e' then return {1, rec, '', ''} end
ev.ch = r.ch
ev.blob = ev.blob .. os_pb_int(2, r.ch)
if r.ca ~= '' then
  ev.case = r.ca
  ev.blob = ev.blob .. os_pb_str(10, r.ca)
end
local out, e2 = os_append({ev})
if not out then return e2 end
r = cjson.decode(redis.call('HGET', K.cs, conv))
r.oc = ARGV[14]
r.wc = ARGV[15]
rec = cjson.encode(r)
redis.call('HSET', K.cs, conv, rec)
return {0, rec, out[1][1], ''}
)lua"));

// ARGV: actor type, actor id, channel, fact count, the event (8), the facts.
// Returns {duplicate (0|1), '', stream id, stored blob, facts JSON...}.
const Script kRecordFacts("conversation.facts",
                          absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua,
                                       kEngagementLua, kFactsLua,
                                       R"lua(
local err = os_guard(K.p, P.cid, true)
if err then return err end
local n = tonumber(ARGV[16])
local ev = os_event_arg(17)
local again = os_done_before(ev.eid, '')
if again then
  for _, f in ipairs(os_read_facts(25, n)) do again[#again + 1] = f end
  return again
end
local ferr = os_check_facts(25, n, 'facts')
if ferr then return ferr end
local out, e2 = os_append({ev})
if not out then return e2 end
local res = {0, '', out[1][1], ''}
for _, f in ipairs(os_write_facts(25, n, tonumber(ARGV[13]), ARGV[14], tonumber(ARGV[15]),
                                  ev.conv, ev.eid)) do
  res[#res + 1] = f
end
return res
)lua"));

void AppendFactArgs(const v1::Fact& f, std::vector<std::string>* args) {
  args->push_back(absl::StrCat(static_cast<int>(f.type())));
  args->push_back(f.name());
  args->push_back(f.value());
  args->push_back(absl::StrCat(f.has_expires_at() ? ToMillis(f.expires_at()) : 0));
  args->push_back(absl::StrCat(f.has_due_at() ? ToMillis(f.due_at()) : 0));
  args->push_back(f.case_id());
  args->push_back(f.conversation_id());
  args->push_back(absl::StrCat(static_cast<int>(f.visibility())));
}

// A customer created now has no case: a request naming one is NOT_FOUND before it is created.
BeforeCreate NoCaseYet(std::string field, std::string case_id) {
  if (case_id.empty()) return nullptr;
  return [field = std::move(field), case_id = std::move(case_id)](Callback<bool> done) {
    done(absl::NotFoundError(
        absl::StrCat(field, ": the customer (created by this request) has no case ", case_id)));
  };
}

absl::Status ValidateFacts(absl::string_view field,
                           const google::protobuf::RepeatedPtrField<v1::Fact>& facts, int64_t now,
                           bool required) {
  if (required && facts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at least one fact is required"));
  }
  if (facts.size() > kMaxFactsPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", kMaxFactsPerRequest, " facts per request"));
  }
  absl::flat_hash_set<std::pair<int, std::string>> seen;
  for (int i = 0; i < facts.size(); ++i) {
    std::string f = absl::StrCat(field, "[", i, "]");
    RETURN_IF_ERROR(ValidateFact(f, facts[i], now));
    if (!seen.insert({facts[i].type(), facts[i].name()}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": repeats the type and name of an earlier fact of this request"));
    }
  }
  return absl::OkStatus();
}

// Facts JSON from reply elements [from, end).
absl::Status AddFacts(const Reply& r, size_t from,
                      google::protobuf::RepeatedPtrField<v1::Fact>* out) {
  for (size_t i = from; i < r.elements.size(); ++i) {
    if (r.elements[i].str.empty()) continue;
    ASSIGN_OR_RETURN(google::protobuf::Struct s, ParseRecord(r.elements[i].str));
    *out->Add() = FactFromRecord(s);
  }
  return absl::OkStatus();
}

// The common shape of the replies: {flag, record, stream id, blob or extra, ...}.
absl::Status CheckReply(const Reply& r, size_t min_size, absl::string_view what) {
  if (!r.is_array() || r.elements.size() < min_size) {
    return absl::InternalError(absl::StrCat("unexpected reply from ", what, " script"));
  }
  return absl::OkStatus();
}

// Handoff and End answer alike, from {duplicate, record, stream id, stored blob}. The event this
// call wrote gets the channel and case id the script added to it (the conversation's).
template <typename Response>
absl::Status ConversationReply(const ScriptResult& r, const std::string& conv,
                               const v1::Event& built, Response* resp) {
  const Reply& rep = r.reply;
  RETURN_IF_ERROR(CheckReply(rep, 4, "conversation"));
  resp->set_customer_id(r.customer_id);
  resp->set_duplicate(rep.elements[0].integer == 1);
  if (!rep.elements[1].str.empty()) {
    ASSIGN_OR_RETURN(google::protobuf::Struct rec, ParseRecord(rep.elements[1].str));
    *resp->mutable_conversation() = ConversationFromRecord(conv, r.customer_id, rec);
  }
  if (rep.elements[2].str.empty()) return absl::OkStatus();  // ended by an appended event
  ASSIGN_OR_RETURN(v1::Event e, StoredEvent(r.customer_id, rep.elements[2].str, rep.elements[3].str,
                                            resp->duplicate() ? nullptr : &built));
  if (!resp->duplicate()) {
    e.set_channel(resp->conversation().channel());
    e.set_case_id(resp->conversation().case_id());
  }
  *resp->mutable_event() = std::move(e);
  return absl::OkStatus();
}

std::string FactNames(const google::protobuf::RepeatedPtrField<v1::Fact>& facts) {
  return absl::StrJoin(facts, ", ", [](std::string* out, const v1::Fact& f) {
    absl::StrAppend(out, v1::FactType_Name(f.type()).substr(10), " ", f.name());
  });
}

}  // namespace

void ConversationStore::Start(const v1::StartConversationRequest& sent, absl::Time deadline,
                              Callback<v1::StartConversationResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, true);
  }
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateActor("served_by", sent.served_by(), true);
  if (st.ok()) st = ValidateToken("case_id", sent.case_id(), timeline::kMaxRefIdBytes, true);
  if (st.ok()) st = ValidateText("summary", sent.summary(), timeline::kMaxSummaryBytes);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  absl::StatusOr<google::protobuf::Timestamp> at =
      st.ok() ? OccurredAt("occurred_at", sent, now) : st;
  if (!at.ok()) return done(at.status());
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::StartConversationRequest req = privacy::MaskedForStorage(sent);
  std::string conv = req.conversation_id().empty() ? NewRandomId("cv_") : req.conversation_id();
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("cs:", conv));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CONVERSATION_STARTED);
  *event->mutable_occurred_at() = *at;
  *event->mutable_actor() = req.served_by();
  event->set_summary(req.summary().empty()
                         ? absl::StrCat("conversation started with ", ActorName(req.served_by()))
                         : req.summary());
  event->set_conversation_id(conv);
  event->set_case_id(req.case_id());
  event->set_visibility(req.visibility());
  std::vector<std::string> args = {conv, absl::StrCat(static_cast<int>(req.served_by().type())),
                                   req.served_by().id(), req.case_id()};
  timeline::AppendEventArgs(*event, &args);
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), req.create_if_missing(), kStart, std::move(args), now,
      deadline,
      [conv, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        if (!r.ok()) return done(r.status());
        const Reply& rep = r->reply;
        if (absl::Status st = CheckReply(rep, 4, "start"); !st.ok()) return done(st);
        v1::StartConversationResponse resp;
        resp.set_customer_id(r->customer_id);
        resp.set_already_started(rep.elements[0].integer == 1);
        absl::StatusOr<google::protobuf::Struct> rec = ParseRecord(rep.elements[1].str);
        if (!rec.ok()) return done(rec.status());
        *resp.mutable_conversation() = ConversationFromRecord(conv, r->customer_id, *rec);
        if (resp.already_started()) {
          absl::StatusOr<v1::Event> e =
              StoredEvent(r->customer_id, rep.elements[2].str, rep.elements[3].str, nullptr);
          if (e.ok()) *resp.mutable_event() = *std::move(e);
        } else {
          absl::StatusOr<v1::Event> e =
              StoredEvent(r->customer_id, rep.elements[2].str, "", event.get());
          if (!e.ok()) return done(e.status());
          *resp.mutable_event() = *std::move(e);
          if (!rep.elements[3].str.empty()) {
            absl::StatusOr<google::protobuf::Struct> rc = ParseRecord(rep.elements[3].str);
            if (!rc.ok()) return done(rc.status());
            *resp.mutable_repeat_contact() = RepeatFromRecord(*rc);
          }
        }
        done(std::move(resp));
      },
      NoCaseYet("case_id", req.case_id()));
}

void ConversationStore::Handoff(const v1::HandoffRequest& sent, absl::Time deadline,
                                Callback<v1::HandoffResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, false);
  }
  if (st.ok()) st = ValidateActor("from", sent.from(), true);
  if (st.ok()) st = ValidateActor("to", sent.to(), true);
  if (st.ok()) st = ValidateChannel("to_channel", sent.to_channel(), false);
  if (st.ok() && sent.reason().empty()) {
    st = absl::InvalidArgumentError("reason: required (why the conversation is handed off)");
  }
  if (st.ok()) st = ValidateText("reason", sent.reason(), kMaxReasonBytes);
  if (st.ok()) st = ValidateText("summary", sent.summary(), timeline::kMaxSummaryBytes);
  if (st.ok()) st = ValidateText("transcript", sent.transcript(), timeline::kMaxBodyBytes);
  if (st.ok()) st = ValidateFacts("collected", sent.collected(), now, false);
  if (st.ok()) st = ValidateToken("request_id", sent.request_id(), timeline::kMaxRefIdBytes, true);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::HandoffRequest req = privacy::MaskedForStorage(sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(
      absl::StrCat("ho:", req.request_id().empty() ? NewRandomId("") : req.request_id()));
  if (req.to_channel() != v1::CHANNEL_UNSPECIFIED) event->set_channel(req.to_channel());
  event->set_kind(v1::EVENT_KIND_HANDOFF);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.from();
  event->set_summary(req.summary().empty()
                         ? absl::StrCat("handed off to ", ActorName(req.to()), ": ", req.reason())
                         : req.summary());
  event->set_body(req.transcript());
  event->set_conversation_id(req.conversation_id());
  event->set_visibility(req.visibility());
  auto& attrs = *event->mutable_attributes();
  attrs["from"] = ActorName(req.from());
  attrs["to"] = ActorName(req.to());
  attrs["reason"] = req.reason();
  if (req.to_channel() != v1::CHANNEL_UNSPECIFIED) {
    attrs["to_channel"] = v1::Channel_Name(req.to_channel());
  }
  if (!req.collected().empty()) attrs["collected"] = FactNames(req.collected());
  // The channel and case id are the conversation's, added by the script (see kHandoff).
  std::string blob_event_channel = absl::StrCat(static_cast<int>(req.to_channel()));
  std::vector<std::string> args = {req.conversation_id(),
                                   absl::StrCat(static_cast<int>(req.from().type())),
                                   req.from().id(),
                                   absl::StrCat(static_cast<int>(req.to().type())),
                                   req.to().id(),
                                   blob_event_channel,
                                   absl::StrCat(req.collected_size())};
  timeline::AppendEventArgs(*event, &args);
  for (const v1::Fact& f : req.collected()) AppendFactArgs(f, &args);
  std::string conv = req.conversation_id();
  RunCustomerScript(ctx_, req.tenant(), req.customer(), false, kHandoff, std::move(args), now,
                    deadline,
                    [conv, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                      if (!r.ok()) return done(r.status());
                      v1::HandoffResponse resp;
                      if (absl::Status st = ConversationReply(*r, conv, *event, &resp); !st.ok()) {
                        return done(st);
                      }
                      done(std::move(resp));
                    });
}

void ConversationStore::End(const v1::EndConversationRequest& sent, absl::Time deadline,
                            Callback<v1::EndConversationResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, false);
  }
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateText("outcome", sent.outcome(), kMaxOutcomeBytes, false);
  if (st.ok()) st = ValidateToken("wrap_up_code", sent.wrap_up_code(), kMaxWrapUpBytes, true);
  if (st.ok()) st = ValidateText("summary", sent.summary(), timeline::kMaxSummaryBytes);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::EndConversationRequest req = privacy::MaskedForStorage(sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("ce:", req.conversation_id()));
  event->set_kind(v1::EVENT_KIND_CONVERSATION_ENDED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(
      req.summary().empty()
          ? absl::StrCat("conversation ended", req.outcome().empty() ? "" : ": ", req.outcome())
          : req.summary());
  event->set_conversation_id(req.conversation_id());
  event->set_visibility(req.visibility());
  if (!req.outcome().empty()) (*event->mutable_attributes())["outcome"] = req.outcome();
  if (!req.wrap_up_code().empty()) {
    (*event->mutable_attributes())["wrap_up_code"] = req.wrap_up_code();
  }
  std::vector<std::string> args = {req.conversation_id(), req.outcome(), req.wrap_up_code()};
  timeline::AppendEventArgs(*event, &args);
  std::string conv = req.conversation_id();
  RunCustomerScript(ctx_, req.tenant(), req.customer(), false, kEnd, std::move(args), now, deadline,
                    [conv, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                      if (!r.ok()) return done(r.status());
                      v1::EndConversationResponse resp;
                      if (absl::Status st = ConversationReply(*r, conv, *event, &resp); !st.ok()) {
                        return done(st);
                      }
                      done(std::move(resp));
                    });
}

void ConversationStore::RecordFacts(const v1::RecordFactsRequest& sent, absl::Time deadline,
                                    Callback<v1::RecordFactsResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateFacts("facts", sent.facts(), now, true);
  if (st.ok()) st = ValidateToken("request_id", sent.request_id(), timeline::kMaxRefIdBytes, true);
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::RecordFactsRequest req = privacy::MaskedForStorage(sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(
      absl::StrCat("fr:", req.request_id().empty() ? NewRandomId("") : req.request_id()));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_FACTS_RECORDED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(absl::StrCat("recorded ", FactNames(req.facts())));
  // The event is as private as the most private fact; it names the facts, not their values.
  v1::Audience visibility = v1::AUDIENCE_CUSTOMER;
  for (const v1::Fact& f : req.facts()) {
    v1::Audience v =
        f.visibility() == v1::AUDIENCE_UNSPECIFIED ? v1::AUDIENCE_AGENT : f.visibility();
    visibility = std::max(visibility, v);
    if (event->conversation_id().empty()) event->set_conversation_id(f.conversation_id());
    if (event->case_id().empty()) event->set_case_id(f.case_id());
  }
  event->set_visibility(visibility);
  std::vector<std::string> args = {absl::StrCat(static_cast<int>(req.actor().type())),
                                   req.actor().id(), absl::StrCat(static_cast<int>(req.channel())),
                                   absl::StrCat(req.facts_size())};
  timeline::AppendEventArgs(*event, &args);
  for (const v1::Fact& f : req.facts()) AppendFactArgs(f, &args);
  std::pair<std::string, std::string> first_case;  // a fact naming a case: field, case id
  for (int i = 0; i < req.facts_size() && first_case.second.empty(); ++i) {
    first_case = {absl::StrCat("facts[", i, "].case_id"), req.facts(i).case_id()};
  }
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), req.create_if_missing(), kRecordFacts, std::move(args),
      now, deadline,
      [event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        if (!r.ok()) return done(r.status());
        const Reply& rep = r->reply;
        if (absl::Status st = CheckReply(rep, 4, "facts"); !st.ok()) return done(st);
        v1::RecordFactsResponse resp;
        resp.set_customer_id(r->customer_id);
        resp.set_duplicate(rep.elements[0].integer == 1);
        absl::StatusOr<v1::Event> e =
            StoredEvent(r->customer_id, rep.elements[2].str, rep.elements[3].str,
                        resp.duplicate() ? nullptr : event.get());
        if (!e.ok()) return done(e.status());
        *resp.mutable_event() = *std::move(e);
        if (absl::Status st = AddFacts(rep, 4, resp.mutable_facts()); !st.ok()) return done(st);
        done(std::move(resp));
      },
      [first_case](Callback<bool> cb) {
        if (first_case.second.empty()) return cb(true);
        cb(absl::NotFoundError(absl::StrCat(first_case.first,
                                            ": the customer (created by this request) has no case ",
                                            first_case.second)));
      });
}

}  // namespace onestory::engagement
