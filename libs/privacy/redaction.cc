// PrivacyStore::Redact: the redaction of one event as bounded, idempotent steps behind a
// durable record (see "Redact" in privacy_store.h).
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/privacy_internal.h"
#include "libs/privacy/privacy_store.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"

namespace onestory::privacy {
namespace {

using internal::Barrier;
using internal::FindMergedSources;
using internal::MergedSource;
using redis::Reply;
using redis::Script;

// ---- Lua ---------------------------------------------------------------------------------------

// Helpers of the copy's two scripts.
constexpr char kCopyLua[] = R"lua(
-- Copies the entries of stream `src` after id `from` into `dst` with their own ids, the entry
-- `sid` with its event replaced by `blob`: at most `max_n` entries and `max_b` bytes of fields
-- and values plus one entry (a batch is never larger than the bytes left allow for entries of
-- `big` bytes). Returns entries, bytes, the last id copied, and whether src's end was reached.
local function os_copy_after(src, dst, from, sid, blob, max_n, max_b, big)
  local n, bytes, last = 0, 0, from
  while n < max_n and bytes < max_b do
    local c = math.floor((max_b - bytes) / big)
    if c < 1 then c = 1 end
    if c > max_n - n then c = max_n - n end
    if c > 64 then c = 64 end
    local batch = redis.call('XRANGE', src, '(' .. last, '+', 'COUNT', c)
    for _, e in ipairs(batch) do
      local f = e[2]
      for j = 1, #f, 2 do
        if e[1] == sid and f[j] == 'e' then f[j + 1] = blob end
        bytes = bytes + #f[j] + #f[j + 1]
      end
      redis.call('XADD', dst, e[1], unpack(f))
      n = n + 1
      last = e[1]
    end
    if #batch < c then return n, bytes, last, true end
  end
  return n, bytes, last, false
end

-- The copy's progress in hash `rd` for redaction `tok` (tokens sort in the order redactions
-- began):
-- 'stale' when this redaction is over (its record is gone, or a newer one has been here),
-- 'swapped' when this stream is done, else the last id copied. A redaction that finds another
-- one's copy starts over.
local function os_progress(rd, staging, mg, tok, root)
  local p = redis.call('HMGET', rd, 'ptok', 'copied', 'swapped', 'tok')
  if root and p[4] ~= tok then return 'stale' end
  if p[3] then
    if p[3] == tok then return 'swapped' end
    if p[3] > tok then return 'stale' end
  end
  if p[1] and p[1] > tok then return 'stale' end
  if p[1] ~= tok then
    redis.call('UNLINK', staging)
    redis.call('HSET', rd, 'ptok', tok, 'copied', '0-0', 'mgn', redis.call('HLEN', mg))
    return '0-0'
  end
  return p[2]
end
)lua";

// KEYS: profile, timeline, staging, dedup, redaction, merge state. ARGV: customer id, token,
// event id, the event to store, max entries, max bytes, largest entry, '1' for the customer
// whose timeline holds the event (else a customer merged into it).
// One step of the copy. Returns {'more'|'caught'|'swapped'|'stale', entries, bytes}.
const Script kRedactChunk("privacy.redact_chunk", absl::StrCat(identity::kGuardLua, kCopyLua, R"lua(
local root = ARGV[8] == '1'
if root then
  local err = os_guard(KEYS[1], ARGV[1], false)
  if err then return err end
end
local from = os_progress(KEYS[5], KEYS[3], KEYS[6], ARGV[2], root)
if from == 'stale' or from == 'swapped' then return {from, 0, 0} end
local sid = redis.call('HGET', KEYS[4], ARGV[3]) or ''
local n, bytes, last, caught = os_copy_after(KEYS[2], KEYS[3], from, sid, ARGV[4],
                                             tonumber(ARGV[5]), tonumber(ARGV[6]),
                                             tonumber(ARGV[7]))
if last ~= from then redis.call('HSET', KEYS[5], 'copied', last) end
if caught then return {'caught', n, bytes} end
return {'more', n, bytes}
)lua"));

// Same keys and arguments. The swap: copies what was appended since the last step (the
// 'more' answer when that is more than one step's bounds), drops the copies of entries
// deleted from the timeline meanwhile (retention trims the oldest), and when the copy then
// holds exactly the timeline's entries gives it the timeline's last id, entries-added and
// max-deleted id and puts it in the timeline's place (the old stream is freed in the
// background). A copy that does not match (a merge or unmerge rebuilt the timeline
// meanwhile: the merge state changed) starts over ('restart'). Refused (OS_BUSY) while a merge
// holds the customer. Returns {'more'|'restart'|'swapped'|'stale', entries, bytes}.
const Script kRedactSwap("privacy.redact_swap", absl::StrCat(identity::kGuardLua, kCopyLua, R"lua(
local root = ARGV[8] == '1'
if root then
  local err = os_guard(KEYS[1], ARGV[1], true)
  if err then return err end
end
local from = os_progress(KEYS[5], KEYS[3], KEYS[6], ARGV[2], root)
if from == 'stale' or from == 'swapped' then return {from, 0, 0} end
local sid = redis.call('HGET', KEYS[4], ARGV[3]) or ''
local n, bytes, last, caught = os_copy_after(KEYS[2], KEYS[3], from, sid, ARGV[4],
                                             tonumber(ARGV[5]), tonumber(ARGV[6]),
                                             tonumber(ARGV[7]))
if last ~= from then redis.call('HSET', KEYS[5], 'copied', last) end
if not caught then return {'more', n, bytes} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #first == 0 then
  redis.call('UNLINK', KEYS[3])
else
  redis.call('XTRIM', KEYS[3], 'MINID', first[1][1])
end
local mgn = redis.call('HLEN', KEYS[6])
if redis.call('XLEN', KEYS[3]) ~= redis.call('XLEN', KEYS[2]) or
   tonumber(redis.call('HGET', KEYS[5], 'mgn')) ~= mgn then
  redis.call('UNLINK', KEYS[3])
  redis.call('HSET', KEYS[5], 'copied', '0-0', 'mgn', mgn)
  return {'restart', n, bytes}
end
if #first > 0 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  local top, added, maxdel = '0-0', 0, '0-0'
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then top = info[i + 1]
    elseif info[i] == 'entries-added' then added = info[i + 1]
    elseif info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
  end
  redis.call('XSETID', KEYS[3], top, 'ENTRIESADDED', added, 'MAXDELETEDID', maxdel)
  redis.call('UNLINK', KEYS[2])
  redis.call('RENAME', KEYS[3], KEYS[2])
end
redis.call('HDEL', KEYS[5], 'ptok', 'copied', 'mgn')
redis.call('HSET', KEYS[5], 'swapped', ARGV[2])
return {'swapped', n, bytes}
)lua"));

// KEYS: profile, dedup, timeline. ARGV: customer id, event id.
// Returns {stream id, entry fields, timeline length}.
const Script kRedactRead("privacy.redact_read", absl::StrCat(identity::kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], true)
if err then return err end
local sid = redis.call('HGET', KEYS[2], ARGV[2])
local x = {}
if sid then x = redis.call('XRANGE', KEYS[3], sid, sid) end
if #x == 0 then
  return redis.error_reply('OS_NOT_FOUND event_id: customer ' .. ARGV[1] .. ' has no event ' ..
                           ARGV[2])
end
return {sid, x[1][2], redis.call('XLEN', KEYS[3])}
)lua"));

// The record's fields, in the order kRedactBegin takes them and ReadRecord reads them.
constexpr const char* kRecordFields[] = {"tok", "eid", "sum", "body", "new",
                                         "old", "sid", "am",  "srcs"};
constexpr size_t kRecordFieldCount = sizeof(kRecordFields) / sizeof(kRecordFields[0]);

// KEYS: redaction. ARGV: the record's values (kRecordFields). Writes the record unless one is
// there. Returns 1 when written.
const Script kRedactBegin("privacy.redact_begin", R"lua(
if redis.call('HEXISTS', KEYS[1], 'tok') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'tok', ARGV[1], 'eid', ARGV[2], 'sum', ARGV[3], 'body', ARGV[4],
           'new', ARGV[5], 'old', ARGV[6], 'sid', ARGV[7], 'am', ARGV[8], 'srcs', ARGV[9])
return 1
)lua");

// KEYS: redaction, staging. ARGV: token, then whether to drop the copy under way too. Drops
// the record (and the copy) when the record is this redaction's.
const Script kRedactEnd("privacy.redact_end", R"lua(
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'tok', 'eid', 'sum', 'body', 'new', 'old', 'sid', 'am', 'srcs')
if ARGV[2] == '1' then
  redis.call('HDEL', KEYS[1], 'ptok', 'copied', 'mgn')
  redis.call('UNLINK', KEYS[2])
end
return 1
)lua");

// KEYS: pending redactions. ARGV: field, value. Drops the field while it holds the value.
const Script kDropPendingIf("privacy.drop_pending_redaction", R"lua(
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
)lua");

// KEYS: cases, facts, conversation records. ARGV: event id, what the event stated ('note':
// a case update, 'resolution', 'outcome' or ''), its case id, its conversation id, old summary,
// old body, new summary, new body.
// The copies of the event's text kept in records: the case's last note and promise text (the
// update that wrote them names itself in le / pte; older records are matched by their text),
// its resolution, the conversation's outcome, and the values of facts it stated (ev, and pe
// for a previous value). A copy the new text no longer holds is replaced by the new body (a
// note) or cleared. Returns how many records changed.
const Script kRedactRecords("privacy.redact_records", R"lua(
local eid, what = ARGV[1], ARGV[2]
local old_sum, old_body, new_sum, new_body = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local function has(text, part) return string.find(text, part, 1, true) ~= nil end
local n = 0
if ARGV[3] ~= '' and (what == 'note' or what == 'resolution') then
  local rec = redis.call('HGET', KEYS[1], ARGV[3])
  if rec then
    local c = cjson.decode(rec)
    local changed = false
    if what == 'note' then
      if type(c.ln) == 'string' and c.ln ~= '' and c.ln ~= new_body and
         (c.le == eid or (c.le == nil and c.ln == old_body)) then
        c.ln = new_body
        changed = true
      end
      if type(c.pt) == 'string' and c.pt ~= '' and not has(new_sum, c.pt) and
         (c.pte == eid or (c.pte == nil and has(old_sum, 'promise "' .. c.pt .. '"'))) then
        c.pt = ''
        changed = true
      end
    elseif type(c.rn) == 'string' and c.rn ~= '' and not has(new_sum, c.rn) then
      c.rn = ''
      changed = true
    end
    if changed then
      redis.call('HSET', KEYS[1], ARGV[3], cjson.encode(c))
      n = n + 1
    end
  end
end
if ARGV[4] ~= '' and what == 'outcome' then
  local rec = redis.call('HGET', KEYS[3], ARGV[4])
  if rec then
    local r = cjson.decode(rec)
    if type(r.oc) == 'string' and r.oc ~= '' and not has(new_sum, r.oc) then
      r.oc = ''
      redis.call('HSET', KEYS[3], ARGV[4], cjson.encode(r))
      n = n + 1
    end
  end
end
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local f = cjson.decode(all[i + 1])
  local changed = false
  if f.ev == eid and f.v ~= '' then f.v = ''; changed = true end
  if f.pe == eid and f.pv ~= '' then f.pv = ''; changed = true end
  if changed then
    redis.call('HSET', KEYS[2], all[i], cjson.encode(f))
    n = n + 1
  end
end
return n
)lua");

std::string PendingField(const std::string& tenant, const std::string& customer) {
  return absl::StrCat(tenant, "/", customer);
}

}  // namespace

// ---- the run -----------------------------------------------------------------------------------

struct PrivacyStore::RedactRun {
  std::string tenant;
  std::string resolved;  // the customer the request named (merges not yet followed)
  std::string root;      // the customer whose timeline holds the event
  std::string token;     // 20 digits from a counter: later redactions sort after
  std::string event_id;
  std::string summary;  // the new text, masked
  std::string body;
  std::string blob;                  // the event to store
  std::string old_blob;              // the event as it was
  std::string sid;                   // its stream id in root's timeline
  std::string appended;              // its 'a' field (ms first stored) for events a merge moved
  std::vector<std::string> targets;  // the customers merged into root, then root
  size_t target = 0;                 // the stream being rebuilt
  absl::Time deadline;
  int64_t steps = 0;
  Callback<v1::RedactEventResponse> done;

  std::string field() const { return PendingField(tenant, root); }
  // The answer: the event as now stored.
  absl::StatusOr<v1::RedactEventResponse> Answer() const {
    v1::RedactEventResponse resp;
    if (!resp.mutable_event()->ParseFromString(blob)) {
      return absl::InternalError(absl::StrCat("undecodable redacted event at ", sid));
    }
    int64_t appended_ms = timeline::StreamIdMillis(sid);
    if (!appended.empty()) absl::SimpleAtoi(appended, &appended_ms);
    resp.mutable_event()->set_customer_id(root);
    resp.mutable_event()->set_cursor(timeline::EncodeCursor(root, sid));
    *resp.mutable_event()->mutable_appended_at() = FromMillis(appended_ms);
    return resp;
  }
};

void PrivacyStore::Redact(const v1::RedactEventRequest& request, absl::Time deadline,
                          Callback<v1::RedactEventResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (absl::Status st =
          ValidateToken("event_id", request.event_id(), timeline::kMaxEventIdBytes, false);
      !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateText("summary", request.summary(), timeline::kMaxSummaryBytes);
      !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateText("body", request.body(), timeline::kMaxBodyBytes); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = internal::ValidateReason(request.reason()); !st.ok()) return done(st);
  auto run = std::make_shared<RedactRun>();
  run->tenant = request.tenant();
  run->event_id = request.event_id();
  // The new text is masked like any stored text (cards, --redact_patterns_file).
  run->summary = timeline::StorageRedactor().Mask(request.summary());
  run->body = timeline::StorageRedactor().Mask(request.body());
  run->deadline = deadline;
  run->done = std::move(done);
  identity_->ResolveRef(run->tenant, "customer", request.customer(), false, deadline,
                        [this, run](absl::StatusOr<identity::IdentityStore::Resolved> who) {
                          if (!who.ok()) return run->done(who.status());
                          run->resolved = who->customer_id;
                          RedactAttempt(run, 0);
                        });
}

namespace {

struct Found {
  std::string customer_id;
  std::string sid;
  std::string blob;
  std::string appended;
  int64_t length = 0;
};

}  // namespace

// Finds the event (merges followed), then finishes the redaction under way on that timeline:
// this one (a retry), or another one first (at most a few times, then ABORTED), or begins it.
void PrivacyStore::RedactAttempt(std::shared_ptr<RedactRun> run, int helped) {
  identity::FollowMerges<Found>(
      run->resolved,
      [this, run](const std::string& c, Callback<Found> cb) {
        keys::CustomerKeys ck(run->tenant, c);
        client_->Eval(kRedactRead, {ck.profile(), ck.dedup(), ck.timeline()}, {c, run->event_id},
                      run->deadline, [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                        if (!r.ok()) return cb(r.status());
                        if (!r->is_array() || r->elements.size() != 3) {
                          return cb(absl::InternalError("unexpected reply from redact script"));
                        }
                        Found f;
                        f.customer_id = c;
                        f.sid = r->elements[0].str;
                        const auto& fields = r->elements[1].elements;
                        for (size_t i = 0; i + 1 < fields.size(); i += 2) {
                          if (fields[i].str == "e") f.blob = fields[i + 1].str;
                          if (fields[i].str == "a") f.appended = fields[i + 1].str;
                        }
                        f.length = r->elements[2].integer;
                        cb(std::move(f));
                      });
      },
      [this, run, helped](absl::StatusOr<Found> found) {
        if (!found.ok()) return run->done(found.status());
        run->root = found->customer_id;
        auto f = std::make_shared<Found>(*std::move(found));
        keys::CustomerKeys ck(run->tenant, run->root);
        client_->Command(
            {"HMGET", ck.redaction(), "tok", "eid", "sum", "body"}, run->deadline,
            [this, run, helped, f](absl::StatusOr<Reply> r) {
              if (!r.ok()) return run->done(r.status());
              if (!r->is_array() || r->elements.size() != 4) {
                return run->done(absl::InternalError("unexpected HMGET reply"));
              }
              const auto& g = r->elements;
              if (!g[0].is_string()) {
                return BeginRedaction(run, helped, f->sid, f->blob, f->appended, f->length);
              }
              bool same =
                  g[1].str == run->event_id && g[2].str == run->summary && g[3].str == run->body;
              if (!same && helped >= 3) {
                return run->done(
                    absl::AbortedError(absl::StrCat("another redaction of customer ", run->root,
                                                    "'s timeline is under way; retry")));
              }
              // This redaction (a retry), or another one, finished first: then this one
              // starts again (and finds its event already redacted when it was the same).
              ResumeRedaction(run->tenant, run->root, run->deadline,
                              [this, run, helped, same](absl::StatusOr<v1::RedactEventResponse> r) {
                                if (same && r.ok()) return run->done(std::move(r));
                                if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
                                  return run->done(r.status());
                                }
                                RedactAttempt(run, helped + 1);
                              });
            });
      });
}

void PrivacyStore::BeginRedaction(std::shared_ptr<RedactRun> run, int helped,
                                  const std::string& sid, const std::string& blob,
                                  const std::string& appended, int64_t length) {
  v1::Event event;
  if (!event.ParseFromString(blob)) {
    return run->done(absl::InternalError(absl::StrCat("undecodable event at ", sid)));
  }
  run->sid = sid;
  run->appended = appended;
  run->old_blob = blob;
  if (event.has_redacted_at() && event.summary() == run->summary && event.body() == run->body) {
    // Done before (a retry after the answer was lost): the same answer.
    run->blob = blob;
    return run->done(run->Answer());
  }
  if (length > kMaxRedactEvents) {
    return run->done(absl::ResourceExhaustedError(
        absl::StrCat("customer ", run->root, " has more than ", kMaxRedactEvents,
                     " events; its timeline is too long to rebuild")));
  }
  event.set_summary(run->summary);
  event.set_body(run->body);
  *event.mutable_redacted_at() = FromMillis(NowMillis());
  run->blob = event.SerializeAsString();
  FindMergedSources(client_, run->tenant, run->root, run->deadline,
                    [this, run, helped](absl::StatusOr<std::vector<MergedSource>> sources) {
                      if (!sources.ok()) return run->done(sources.status());
                      // The copies kept by customers merged into it first, the timeline itself
                      // last.
                      for (const MergedSource& s : *sources) run->targets.push_back(s.customer_id);
                      run->targets.push_back(run->root);
                      client_->Command({"INCR", keys::RedactionSequenceKey()}, run->deadline,
                                       [this, run, helped](absl::StatusOr<Reply> seq) {
                                         if (!seq.ok()) return run->done(seq.status());
                                         run->token = absl::StrFormat("%020d", seq->integer);
                                         WriteRedaction(run, helped);
                                       });
                    });
}

// Listed as pending before the record exists: recovery drops an entry without one.
void PrivacyStore::WriteRedaction(std::shared_ptr<RedactRun> run, int helped) {
  client_->Command({"HSET", keys::PendingRedactionsKey(), run->field(), absl::StrCat(NowMillis())},
                   run->deadline, [this, run, helped](absl::StatusOr<Reply> r) {
                     if (!r.ok()) return run->done(r.status());
                     if (RedactFailpoint(run, "redact.begin")) return;
                     std::vector<std::string> sources(run->targets.begin(), run->targets.end() - 1);
                     keys::CustomerKeys ck(run->tenant, run->root);
                     client_->Eval(
                         kRedactBegin, {ck.redaction()},
                         {run->token, run->event_id, run->summary, run->body, run->blob,
                          run->old_blob, run->sid, run->appended, absl::StrJoin(sources, ",")},
                         run->deadline, [this, run, helped](absl::StatusOr<Reply> r) {
                           if (!r.ok()) return run->done(r.status());
                           // Another redaction began meanwhile: it goes first.
                           if (r->integer != 1) return RedactAttempt(run, helped + 1);
                           Log(LogLevel::kInfo, "redact.started",
                               {{"tenant", run->tenant},
                                {"customer", run->root},
                                {"stream_id", run->sid},
                                {"streams", absl::StrCat(run->targets.size())}});
                           DriveRedaction(run);
                         });
                   });
}

void PrivacyStore::ResumeRedaction(const std::string& tenant, const std::string& customer,
                                   absl::Time deadline, Callback<v1::RedactEventResponse> then) {
  keys::CustomerKeys ck(tenant, customer);
  std::vector<std::string> cmd = {"HMGET", ck.redaction()};
  cmd.insert(cmd.end(), std::begin(kRecordFields), std::end(kRecordFields));
  client_->Command(
      std::move(cmd), deadline,
      [this, tenant, customer, deadline, then = std::move(then)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return then(r.status());
        if (!r->is_array() || r->elements.size() != kRecordFieldCount) {
          return then(absl::InternalError("unexpected HMGET reply"));
        }
        const auto& g = r->elements;
        if (!g[0].is_string()) {
          return then(absl::NotFoundError(
              absl::StrCat("customer ", customer, " has no redaction under way")));
        }
        auto run = std::make_shared<RedactRun>();
        run->tenant = tenant;
        run->resolved = customer;
        run->root = customer;
        run->token = g[0].str;
        run->event_id = g[1].str;
        run->summary = g[2].str;
        run->body = g[3].str;
        run->blob = g[4].str;
        run->old_blob = g[5].str;
        run->sid = g[6].str;
        run->appended = g[7].str;
        run->targets = absl::StrSplit(g[8].str, ',', absl::SkipEmpty());
        run->targets.push_back(customer);
        run->deadline = deadline;
        run->done = std::move(then);
        DriveRedaction(run);
      });
}

bool PrivacyStore::RedactFailpoint(std::shared_ptr<RedactRun> run, const char* step) {
  if (!failpoint_ || !failpoint_(step)) return false;
  run->done(absl::UnavailableError(absl::StrCat("failpoint ", step)));
  return true;
}

void PrivacyStore::DriveRedaction(std::shared_ptr<RedactRun> run) {
  if (run->target >= run->targets.size()) return RedactRecords(run);
  CopyStep(run, false);
}

// One copy or swap step of the stream being rebuilt, then the next.
void PrivacyStore::CopyStep(std::shared_ptr<RedactRun> run, bool swap) {
  if (RedactFailpoint(run, swap ? "redact.swap" : "redact.copy")) return;
  // A long redaction keeps its pending entry young, so that recovery leaves it alone.
  if (++run->steps % 64 == 0) {
    client_->Command(
        {"HSET", keys::PendingRedactionsKey(), run->field(), absl::StrCat(NowMillis())},
        run->deadline, [](absl::StatusOr<Reply>) {});
  }
  const std::string& c = run->targets[run->target];
  bool root = c == run->root;
  keys::CustomerKeys ck(run->tenant, c);
  client_->Eval(
      swap ? kRedactSwap : kRedactChunk,
      {ck.profile(), ck.timeline(), ck.timeline_rebuild(), ck.dedup(), ck.redaction(),
       ck.merge_state()},
      {c, run->token, run->event_id, run->blob, absl::StrCat(kRedactChunkEntries),
       absl::StrCat(kRedactChunkBytes), absl::StrCat(kRedactLargestEntryBytes), root ? "1" : "0"},
      run->deadline, [this, run, root](absl::StatusOr<Reply> r) {
        if (!r.ok()) {
          absl::Status st = r.status();
          std::optional<identity::Moved> moved = identity::MovedTo(st);
          if (!root || (!moved && st.code() != absl::StatusCode::kNotFound)) {
            return run->done(st);
          }
          // The customer was merged into another or erased meanwhile: this redaction is over
          // (an erase removes everything; after a merge a retry redacts the event where it is
          // now, and the copy here).
          if (moved) {
            st = absl::AbortedError(absl::StrCat("customer ", run->root, " was merged into ",
                                                 moved->target, " meanwhile; retry"));
          }
          keys::CustomerKeys ck(run->tenant, run->root);
          return client_->Eval(
              kRedactEnd, {ck.redaction(), ck.timeline_rebuild()}, {run->token, "1"}, run->deadline,
              [this, run, st](absl::StatusOr<Reply> e) {
                if (!e.ok()) return run->done(e.status());
                client_->Command({"HDEL", keys::PendingRedactionsKey(), run->field()},
                                 run->deadline,
                                 [run, st](absl::StatusOr<Reply>) { run->done(st); });
              });
        }
        if (!r->is_array() || r->elements.size() != 3) {
          return run->done(absl::InternalError("unexpected reply from redact copy script"));
        }
        const std::string& state = r->elements[0].str;
        // Stale on the timeline itself: the record is gone, another run of this redaction
        // finished it. On a merged customer's copy: a later redaction rebuilt it (one of this
        // timeline's, so after this one finished; or the customer's own after an unmerge).
        if (state == "stale" && root) return run->done(run->Answer());
        if (state == "swapped" || state == "stale") {
          ++run->target;
          return DriveRedaction(run);
        }
        CopyStep(run, state == "caught");
      });
}

void PrivacyStore::RedactRecords(std::shared_ptr<RedactRun> run) {
  if (RedactFailpoint(run, "redact.records")) return;
  v1::Event old;
  if (!old.ParseFromString(run->old_blob)) {
    return run->done(absl::InternalError(absl::StrCat("undecodable event at ", run->sid)));
  }
  const char* what = "";
  switch (old.kind()) {
    case v1::EVENT_KIND_CASE_UPDATE:
      what = "note";
      break;
    case v1::EVENT_KIND_CASE_RESOLVED:
      what = "resolution";
      break;
    case v1::EVENT_KIND_CONVERSATION_ENDED:
      what = "outcome";
      break;
    default:
      break;
  }
  auto b = Barrier::Make(run->targets.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    FinishRedaction(run);
  });
  for (const std::string& c : run->targets) {
    keys::CustomerKeys ck(run->tenant, c);
    client_->Eval(kRedactRecords, {ck.cases(), ck.facts(), ck.conversation_records()},
                  {run->event_id, what, old.case_id(), old.conversation_id(), old.summary(),
                   old.body(), run->summary, run->body},
                  run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::FinishRedaction(std::shared_ptr<RedactRun> run) {
  if (RedactFailpoint(run, "redact.done")) return;
  keys::CustomerKeys ck(run->tenant, run->root);
  client_->Eval(kRedactEnd, {ck.redaction(), ck.timeline_rebuild()}, {run->token, "0"},
                run->deadline, [this, run](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return run->done(r.status());
                  client_->Command({"HDEL", keys::PendingRedactionsKey(), run->field()},
                                   run->deadline, [run](absl::StatusOr<Reply> r) {
                                     if (!r.ok()) return run->done(r.status());
                                     Log(LogLevel::kInfo, "redact.done",
                                         {{"customer", run->root},
                                          {"stream_id", run->sid},
                                          {"steps", absl::StrCat(run->steps)}});
                                     run->done(run->Answer());
                                   });
                });
}

void PrivacyStore::RecoverRedactions(absl::Time deadline, absl::Duration older_than,
                                     Callback<int> done) {
  client_->Command(
      {"HGETALL", keys::PendingRedactionsKey()}, deadline,
      [this, deadline, older_than, done = std::move(done)](absl::StatusOr<Reply> all) mutable {
        if (!all.ok()) return done(all.status());
        struct Due {
          std::string tenant, customer, value;
        };
        std::vector<Due> due;
        int64_t now = NowMillis();
        const auto& e = all->elements;
        for (size_t i = 0; i + 1 < e.size(); i += 2) {
          int64_t at = 0;
          absl::SimpleAtoi(e[i + 1].str, &at);
          if (now - at < absl::ToInt64Milliseconds(older_than)) continue;
          std::pair<std::string, std::string> parts = absl::StrSplit(e[i].str, '/');
          if (ValidateTenant(parts.first).ok() && ValidateCustomerId("", parts.second).ok()) {
            due.push_back({parts.first, parts.second, e[i + 1].str});
          }
        }
        auto finished = std::make_shared<std::atomic<int>>(0);
        auto shared_done = std::make_shared<Callback<int>>(std::move(done));
        auto b = Barrier::Make(due.size(), [finished, shared_done](absl::Status) {
          (*shared_done)(finished->load());
        });
        for (const Due& d : due) {
          Log(LogLevel::kInfo, "redact.recovering",
              {{"tenant", d.tenant}, {"customer", d.customer}});
          ResumeRedaction(
              d.tenant, d.customer, deadline,
              [this, b, finished, d, deadline](absl::StatusOr<v1::RedactEventResponse> r) {
                if (r.ok()) {
                  ++*finished;
                  return b->Arrive(absl::OkStatus());
                }
                if (r.status().code() == absl::StatusCode::kNotFound) {
                  // No record: it finished, or its run stopped before writing one.
                  return client_->Eval(kDropPendingIf, {keys::PendingRedactionsKey()},
                                       {PendingField(d.tenant, d.customer), d.value}, deadline,
                                       [b](absl::StatusOr<Reply>) { b->Arrive(absl::OkStatus()); });
                }
                Log(LogLevel::kWarning, "redact.recovery_failed",
                    {{"tenant", d.tenant},
                     {"customer", d.customer},
                     {"error", r.status().ToString()}});
                b->Arrive(absl::OkStatus());
              });
        }
      });
}

}  // namespace onestory::privacy
