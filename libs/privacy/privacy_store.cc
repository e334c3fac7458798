#include "libs/privacy/privacy_store.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/identity/match_keys.h"
#include "libs/identity/merge_suggester.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/privacy_internal.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"
#include "libs/timeline/timeline_store.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::privacy {
namespace {

using internal::Barrier;
using internal::FindMergedSources;
using internal::MergedSource;
using internal::Transient;
using internal::ValidateReason;

using redis::Reply;
using redis::Script;

// ---- Lua ---------------------------------------------------------------------------------------

// os_rebuild(src, tmp, edit): rebuilds stream `src` in one script (the erase's alerts step): every
// entry copied with its own id to `tmp`, which gets src's last id, entries-added and max-deleted
// id and is renamed over it. `edit(id, fields)` returns the fields to write for the entry, or
// nil to leave it out. Returns the entries left out.
constexpr char kRebuildLua[] = R"lua(
local function os_id_less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end

local function os_rebuild(src, tmp, edit)
  redis.call('DEL', tmp)
  if redis.call('EXISTS', src) == 0 then return 0 end
  local info = redis.call('XINFO', 'STREAM', src)
  local last, added, maxdel = '0-0', 0, '0-0'
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1]
    elseif info[i] == 'entries-added' then added = info[i + 1]
    elseif info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
  end
  local start, kept, dropped = '-', 0, 0
  while true do
    local batch = redis.call('XRANGE', src, start, '+', 'COUNT', 1000)
    for _, e in ipairs(batch) do
      local f = edit(e[1], e[2])
      if f then
        redis.call('XADD', tmp, e[1], unpack(f))
        kept = kept + 1
      else
        dropped = dropped + 1
        if os_id_less(maxdel, e[1]) then maxdel = e[1] end
      end
    end
    if #batch < 1000 then break end
    start = '(' .. batch[#batch][1]
  end
  if kept == 0 then
    -- An emptied stream keeps its last id: add an entry at it and delete it.
    redis.call('XADD', tmp, last, 'x', '')
    redis.call('XDEL', tmp, last)
  end
  redis.call('XSETID', tmp, last, 'ENTRIESADDED', added, 'MAXDELETEDID', maxdel)
  redis.call('RENAME', tmp, src)
  return dropped
end
)lua";

// KEYS: profile, erased profile. ARGV: customer id, now ms, notify channel. The erase's first
// step: the profile becomes a tombstone (its old fields move aside until the last step, for
// the suggestion index). Returns {'tombstoned'|'erased', ms} or {'moved', target}.
const Script kTombstoneRoot("privacy.tombstone_root", R"lua(
local g = redis.call('HMGET', KEYS[1], 'created_at', 'erased_at', 'merged_into', 'merge_lock')
if g[2] then return {'erased', g[2]} end
if not g[1] then return redis.error_reply('OS_NOT_FOUND customer ' .. ARGV[1] .. ' not found') end
if g[3] then return {'moved', g[3]} end
if g[4] then
  return redis.error_reply('OS_BUSY customer ' .. ARGV[1] .. ' is held by merge ' .. g[4] ..
                           '; retry shortly')
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'erased_at', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'erased')
return {'tombstoned', ARGV[2]}
)lua");

// KEYS: profile, erased profile. ARGV: now ms, notify channel. A merged customer's tombstone.
const Script kTombstoneSource("privacy.tombstone_source", R"lua(
if redis.call('HEXISTS', KEYS[1], 'erased_at') == 1 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('HSET', KEYS[1], 'erased_at', ARGV[1])
redis.call('PUBLISH', ARGV[2], 'erased')
return 1
)lua");

// KEYS: pending erasures. ARGV: field, token. Drops the record when this token wrote it.
const Script kReleasePending("privacy.release_pending", R"lua(
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '|' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
)lua");

// KEYS: identifiers, cases, merge history, merge state, timeline, erased profile.
// Returns {identifier fields, cases (HGETALL), merge ids, merge state fields, timeline length,
// the profile as it was (HGETALL)}.
const Script kReadCustomer("privacy.read_customer", R"lua(
return {redis.call('HKEYS', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('ZRANGE', KEYS[3], 0, -1), redis.call('HKEYS', KEYS[4]),
        redis.call('XLEN', KEYS[5]), redis.call('HGETALL', KEYS[6])}
)lua");

// KEYS: identifier index. ARGV: the erased customers. Deletes the entry when it names one.
const Script kDropIndex("privacy.drop_index", R"lua(
local owner = redis.call('GET', KEYS[1])
if not owner then return 0 end
for i = 1, #ARGV do
  if owner == ARGV[i] then
    redis.call('DEL', KEYS[1])
    return 1
  end
end
return 0
)lua");

// KEYS: alert log, its rebuild key, ids, open, acks. ARGV: the erased customers.
// Rebuilds the log without their alerts (when it holds any) and forgets their ids.
// Returns how many alerts went.
const Script kDropAlertLog("privacy.drop_alert_log", absl::StrCat(kRebuildLua, R"lua(
local erased = {}
for i = 1, #ARGV do erased[ARGV[i]] = true end
local function about(f)
  local c, id = nil, nil
  for j = 1, #f, 2 do
    if f[j] == 'c' then c = f[j + 1] elseif f[j] == 'id' then id = f[j + 1] end
  end
  return c and erased[c], id
end
local found, start = false, '-'
while not found do
  local batch = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1000)
  for _, e in ipairs(batch) do
    if about(e[2]) then found = true; break end
  end
  if #batch < 1000 then break end
  start = '(' .. batch[#batch][1]
end
if not found then return 0 end
local gone = {}
local n = os_rebuild(KEYS[1], KEYS[2], function(id, f)
  local hit, aid = about(f)
  if hit then
    if aid then gone[#gone + 1] = aid end
    return nil
  end
  return f
end)
for _, aid in ipairs(gone) do
  redis.call('HDEL', KEYS[3], aid)
  redis.call('ZREM', KEYS[4], aid)
  redis.call('HDEL', KEYS[5], aid)
end
return n
)lua"));

// KEYS: alert ids, open, acks. ARGV: HSCAN cursor, then the erased customers. Forgets the alert
// ids naming them ("<kind>:<customer>:..."), including those of alerts trimmed from the log.
// Returns {next cursor, forgotten}.
const Script kDropAlertIds("privacy.drop_alert_ids", R"lua(
local erased = {}
for i = 2, #ARGV do erased[ARGV[i]] = true end
local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', 1000)
local n = 0
for i = 1, #r[2], 2 do
  local id = r[2][i]
  local c = string.match(id, '^[^:]*:([^:]*):')
  if c and erased[c] then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    n = n + 1
  end
end
return {r[1], n}
)lua");

// KEYS: profile, then every other key of the customer. ARGV: now ms. Deletes them all but the
// tombstone (made here if missing). Returns how many existed.
const Script kDropKeys("privacy.drop_keys", R"lua(
if redis.call('HEXISTS', KEYS[1], 'erased_at') == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'erased_at', ARGV[1])
end
local n = 0
for i = 2, #KEYS do n = n + redis.call('UNLINK', KEYS[i]) end
return n
)lua");

// KEYS: profile, identifiers, conversation records, cases, facts. ARGV: customer id.
const Script kExportRead("privacy.export_read", absl::StrCat(identity::kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], false)
if err then return err end
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4]),
        redis.call('HGETALL', KEYS[5])}
)lua"));

// KEYS: profile, timeline. ARGV: customer id, start, count.
const Script kExportRange("privacy.export_range", absl::StrCat(identity::kGuardLua, R"lua(
local err = os_guard(KEYS[1], ARGV[1], false)
if err then return err end
return redis.call('XRANGE', KEYS[2], ARGV[2], '+', 'COUNT', ARGV[3])
)lua"));

// ---- helpers
// -------------------------------------------------------------------------------------

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "{}";
  return out;
}

// A JSON string literal (ids only: they are printable ASCII, but quotes and backslashes are
// escaped regardless).
std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

namespace internal {

bool Transient(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable ||
         st.code() == absl::StatusCode::kDeadlineExceeded;
}

// The customers merged into `root`, recursively, in the order found: each MERGED merge record
// in a customer's history whose target it is.
void FindMergedSources(redis::Client* client, const std::string& tenant, const std::string& root,
                       absl::Time deadline, Callback<std::vector<MergedSource>> done) {
  struct State {
    redis::Client* client;
    std::string tenant;
    absl::Time deadline;
    std::deque<std::string> queue;
    std::set<std::string> seen;
    std::vector<MergedSource> found;
    Callback<std::vector<MergedSource>> done;
  };
  auto state = std::make_shared<State>();
  state->client = client;
  state->tenant = tenant;
  state->deadline = deadline;
  state->queue.push_back(root);
  state->seen.insert(root);
  state->done = std::move(done);
  struct Walk {
    static void Next(std::shared_ptr<State> s) {
      if (s->queue.empty()) return s->done(std::move(s->found));
      std::string c = s->queue.front();
      s->queue.pop_front();
      s->client->Command(
          {"ZRANGE", keys::CustomerKeys(s->tenant, c).merge_history(), "0", "-1"}, s->deadline,
          [s, c](absl::StatusOr<Reply> ids) {
            if (!ids.ok()) return s->done(ids.status());
            auto records = std::make_shared<std::vector<v1::MergeRecord>>(ids->elements.size());
            auto b = Barrier::Make(ids->elements.size(), [s, c, records](absl::Status st) {
              if (!st.ok()) return s->done(st);
              for (const v1::MergeRecord& r : *records) {
                if (r.target_customer_id() != c || r.state() != v1::MergeRecord::STATE_MERGED ||
                    !s->seen.insert(r.source_customer_id()).second) {
                  continue;
                }
                s->found.push_back(
                    MergedSource{r.source_customer_id(), r.merge_id(), c, ToMillis(r.merged_at())});
                s->queue.push_back(r.source_customer_id());
              }
              Next(s);
            });
            for (size_t i = 0; i < ids->elements.size(); ++i) {
              s->client->Command({"HGET", keys::MergeKey(s->tenant, ids->elements[i].str), "rec"},
                                 s->deadline, [b, records, i](absl::StatusOr<Reply> r) {
                                   if (r.ok() && r->is_string())
                                     (*records)[i].ParseFromString(r->str);
                                   b->Arrive(r.status());
                                 });
            }
          });
    }
  };
  Walk::Next(std::move(state));
}

absl::Status ValidateReason(absl::string_view reason) {
  return ValidateText("reason", reason, kMaxReasonBytes, /*allow_newlines=*/false);
}

}  // namespace internal

namespace {

// The pending record: "<token>|<updated ms>|<events>|<identifiers>|<sources, comma-separated>".
struct PendingRecord {
  std::string token;
  int64_t updated_ms = 0;
  int64_t events = -1;
  int64_t identifiers = -1;
  std::vector<std::string> sources;
};

PendingRecord ParseRecord(absl::string_view value) {
  PendingRecord r;
  std::vector<std::string> parts = absl::StrSplit(value, '|');
  if (parts.size() > 0) r.token = parts[0];
  if (parts.size() > 1) absl::SimpleAtoi(parts[1], &r.updated_ms);
  if (parts.size() > 2 && !absl::SimpleAtoi(parts[2], &r.events)) r.events = -1;
  if (parts.size() > 3 && !absl::SimpleAtoi(parts[3], &r.identifiers)) r.identifiers = -1;
  if (parts.size() > 4) r.sources = absl::StrSplit(parts[4], ',', absl::SkipEmpty());
  return r;
}

}  // namespace

// ---- erase
// ---------------------------------------------------------------------------------------

struct PrivacyStore::EraseRun {
  std::string tenant;
  std::string root;
  std::string token;
  absl::Time deadline;
  bool claimed = false;              // this run wrote the pending record before the tombstone
  std::vector<std::string> sources;  // merged into root: erased with it
  int64_t events = -1;
  int64_t identifiers = -1;
  struct Customer {
    std::string id;
    std::vector<std::string> identifier_fields;
    std::vector<std::string> case_ids;
    std::set<std::string> stages;
    // "<stage>|<entered ms, 15 digits>|": the start of its open cases' journey_open members
    // (libs/engagement/lua/journey.lua), with the case id that ends them
    std::vector<std::pair<std::string, std::string>> journey_entries;
    std::set<std::string> merge_ids;      // its merge history
    std::set<std::string> staging_ids;    // merges its merge state names
    std::vector<std::string> match_keys;  // of its profile, in the merge suggestion index
    int64_t events = 0;
  };
  std::vector<Customer> customers;  // root first
  std::vector<std::string> journey_stages;
  Callback<v1::EraseCustomerResponse> done;

  std::string field() const { return absl::StrCat(tenant, "/", root); }
  std::vector<std::string> all_ids() const {
    std::vector<std::string> ids = {root};
    ids.insert(ids.end(), sources.begin(), sources.end());
    return ids;
  }
  std::string record() const {
    return absl::StrCat(token, "|", NowMillis(), "|", events, "|", identifiers, "|",
                        absl::StrJoin(sources, ","));
  }
};

void PrivacyStore::Erase(const v1::EraseCustomerRequest& request, absl::Time deadline,
                         Callback<v1::EraseCustomerResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (absl::Status st = ValidateReason(request.reason()); !st.ok()) return done(st);
  auto run = std::make_shared<EraseRun>();
  run->tenant = request.tenant();
  run->deadline = deadline;
  run->done = std::move(done);
  bool by_identifier = request.customer().has_identifier();
  identity_->ResolveRef(
      request.tenant(), "customer", request.customer(), false, deadline,
      [this, run, by_identifier](absl::StatusOr<identity::IdentityStore::Resolved> who) {
        if (!who.ok()) return run->done(who.status());
        StartErase(run, who->customer_id, by_identifier, 0);
      });
}

void PrivacyStore::StartErase(std::shared_ptr<EraseRun> run, const std::string& customer_id,
                              bool by_identifier, int hops) {
  keys::CustomerKeys ck(run->tenant, customer_id);
  client_->Command(
      {"HMGET", ck.profile(), "created_at", "erased_at", "merged_into"}, run->deadline,
      [this, run, customer_id, by_identifier, hops](absl::StatusOr<Reply> r) {
        if (!r.ok()) return run->done(r.status());
        if (r->elements.size() != 3)
          return run->done(absl::InternalError("unexpected HMGET reply"));
        const auto& f = r->elements;
        run->root = customer_id;
        if (f[1].is_string()) {
          // Erased already: finish an erase left unfinished, else say so.
          return client_->Command({"HGET", keys::PendingErasuresKey(), run->field()}, run->deadline,
                                  [this, run, by_identifier](absl::StatusOr<Reply> pending) {
                                    if (!pending.ok()) return run->done(pending.status());
                                    if (pending->is_string())
                                      return ContinueErase(run, pending->str);
                                    if (by_identifier) {
                                      return run->done(absl::NotFoundError(
                                          "customer.identifier: no customer has this identifier"));
                                    }
                                    v1::EraseCustomerResponse resp;
                                    resp.set_customer_id(run->root);
                                    resp.set_already_erased(true);
                                    run->done(std::move(resp));
                                  });
        }
        if (!f[0].is_string()) {
          return run->done(
              absl::NotFoundError(absl::StrCat("customer: customer ", customer_id, " not found")));
        }
        if (f[2].is_string()) {
          // Merged into another: the same person; erase the customer the merges lead to.
          if (hops + 1 > identity::kMaxMergeHops) {
            return run->done(absl::InternalError("merge chain longer than 16 customers"));
          }
          return StartErase(run, f[2].str, by_identifier, hops + 1);
        }
        run->token = NewRandomId("er_");
        client_->Command({"HSETNX", keys::PendingErasuresKey(), run->field(), run->record()},
                         run->deadline, [this, run](absl::StatusOr<Reply> claim) {
                           if (!claim.ok()) return run->done(claim.status());
                           run->claimed = claim->integer == 1;
                           Log(LogLevel::kInfo, "erase.started",
                               {{"tenant", run->tenant}, {"customer", run->root}});
                           Step(run, "erase.tombstone", &PrivacyStore::Tombstone);
                         });
      });
}

void PrivacyStore::ContinueErase(std::shared_ptr<EraseRun> run, const std::string& record) {
  PendingRecord rec = ParseRecord(record);
  run->token = rec.token.empty() ? NewRandomId("er_") : rec.token;
  run->events = rec.events;
  run->identifiers = rec.identifiers;
  run->sources = rec.sources;
  run->claimed = false;
  Step(run, "erase.tombstone", &PrivacyStore::Tombstone);
}

void PrivacyStore::Step(std::shared_ptr<EraseRun> run, const char* name,
                        void (PrivacyStore::*step)(std::shared_ptr<EraseRun>)) {
  if (failpoint_ && failpoint_(name)) {
    return run->done(absl::UnavailableError(absl::StrCat("failpoint ", name)));
  }
  (this->*step)(run);
}

void PrivacyStore::SaveRecord(std::shared_ptr<EraseRun> run, absl::AnyInvocable<void()> then) {
  client_->Command({"HSET", keys::PendingErasuresKey(), run->field(), run->record()}, run->deadline,
                   [run, then = std::move(then)](absl::StatusOr<Reply> r) mutable {
                     if (!r.ok()) return run->done(r.status());
                     then();
                   });
}

void PrivacyStore::Tombstone(std::shared_ptr<EraseRun> run) {
  keys::CustomerKeys ck(run->tenant, run->root);
  client_->Eval(
      kTombstoneRoot, {ck.profile(), ck.erased_profile()},
      {run->root, absl::StrCat(NowMillis()), ck.channel()}, run->deadline,
      [this, run](absl::StatusOr<Reply> r) {
        // Refused: nothing changed; the pending record goes when this run wrote it (or, for a
        // recovered record, when the customer does not exist).
        auto refuse = [this, run](absl::Status status) {
          if (Transient(status)) return run->done(std::move(status));
          bool gone = status.code() == absl::StatusCode::kNotFound;
          if (!run->claimed && !gone) return run->done(std::move(status));
          auto finish = [run, status](absl::StatusOr<Reply>) { run->done(status); };
          if (run->claimed) {
            return client_->Eval(kReleasePending, {keys::PendingErasuresKey()},
                                 {run->field(), run->token}, run->deadline, std::move(finish));
          }
          client_->Command({"HDEL", keys::PendingErasuresKey(), run->field()}, run->deadline,
                           std::move(finish));
        };
        if (!r.ok()) return refuse(r.status());
        if (!r->is_array() || r->elements.size() != 2) {
          return run->done(absl::InternalError("unexpected reply from tombstone script"));
        }
        if (r->elements[0].str == "moved") {
          return refuse(absl::AbortedError(absl::StrCat("customer ", run->root, " was merged into ",
                                                        r->elements[1].str, " meanwhile; retry")));
        }
        // Tombstoned now or by an earlier run: from here the erase only goes forward.
        SaveRecord(run, [this, run] { Step(run, "erase.closure", &PrivacyStore::Closure); });
      });
}

void PrivacyStore::Closure(std::shared_ptr<EraseRun> run) {
  FindMergedSources(client_, run->tenant, run->root, run->deadline,
                    [this, run](absl::StatusOr<std::vector<MergedSource>> found) {
                      if (!found.ok()) return run->done(found.status());
                      for (const MergedSource& m : *found) {
                        if (std::find(run->sources.begin(), run->sources.end(), m.customer_id) ==
                            run->sources.end()) {
                          run->sources.push_back(m.customer_id);
                        }
                      }
                      ReadCustomers(run);
                    });
}

void PrivacyStore::ReadCustomers(std::shared_ptr<EraseRun> run) {
  std::vector<std::string> ids = run->all_ids();
  run->customers.assign(ids.size(), {});
  auto b = Barrier::Make(ids.size() + 1, [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    // The counts, once: from the first run that read everything.
    if (run->events < 0) run->events = run->customers[0].events;
    if (run->identifiers < 0) {
      std::set<std::string> fields;
      for (const auto& c : run->customers) {
        fields.insert(c.identifier_fields.begin(), c.identifier_fields.end());
      }
      run->identifiers = static_cast<int64_t>(fields.size());
    }
    SaveRecord(run, [this, run] { Step(run, "erase.sources", &PrivacyStore::TombstoneSources); });
  });
  client_->Command({"GET", keys::TenantKeys(run->tenant).journey_stages()}, run->deadline,
                   [run, b](absl::StatusOr<Reply> r) {
                     if (r.ok() && r->is_string()) {
                       run->journey_stages = absl::StrSplit(r->str, '\n', absl::SkipEmpty());
                     }
                     b->Arrive(r.status());
                   });
  // The suggestion keys are made as MergeSuggester made them: with the tenant's default country.
  const identity::PhoneCountry* country = identity_->DefaultCountryOf(run->tenant);
  for (size_t i = 0; i < ids.size(); ++i) {
    keys::CustomerKeys ck(run->tenant, ids[i]);
    run->customers[i].id = ids[i];
    client_->Eval(kReadCustomer,
                  {ck.identifiers(), ck.cases(), ck.merge_history(), ck.merge_state(),
                   ck.timeline(), ck.erased_profile()},
                  {}, run->deadline, [run, b, i, country](absl::StatusOr<Reply> r) {
                    if (!r.ok()) return b->Arrive(r.status());
                    if (!r->is_array() || r->elements.size() != 6) {
                      return b->Arrive(absl::InternalError("unexpected reply from read script"));
                    }
                    EraseRun::Customer& c = run->customers[i];
                    for (const Reply& f : r->elements[0].elements)
                      c.identifier_fields.push_back(f.str);
                    const auto& cases = r->elements[1].elements;
                    for (size_t k = 0; k + 1 < cases.size(); k += 2) {
                      c.case_ids.push_back(cases[k].str);
                      absl::StatusOr<google::protobuf::Struct> rec =
                          engagement::ParseRecord(cases[k + 1].str);
                      if (!rec.ok()) continue;
                      auto sg = rec->fields().find("sg");
                      if (sg != rec->fields().end() && !sg->second.string_value().empty()) {
                        c.stages.insert(sg->second.string_value());
                        // Its member of the open-case index, but for the customer.
                        v1::Case parsed = engagement::CaseFromRecord(cases[k].str, c.id, *rec);
                        std::string ms = absl::StrCat(ToMillis(parsed.stage_entered_at()));
                        if (ms.size() < 15) ms.insert(0, 15 - ms.size(), '0');
                        c.journey_entries.emplace_back(
                            absl::StrCat(sg->second.string_value(), "|", ms, "|"), cases[k].str);
                      }
                    }
                    for (const Reply& m : r->elements[2].elements) c.merge_ids.insert(m.str);
                    for (const Reply& f : r->elements[3].elements) {
                      // "<merge id>:<what>"
                      c.staging_ids.insert(f.str.substr(0, f.str.find(':')));
                    }
                    c.events = r->elements[4].integer;
                    // The keys its profile put it under in the merge suggestion index.
                    v1::Profile was = identity::ProfileFromHashes(c.id, r->elements[5], Reply());
                    for (const identity::MatchKey& k : identity::ProfileMatchKeys(was, country)) {
                      c.match_keys.push_back(k.key);
                    }
                    b->Arrive(absl::OkStatus());
                  });
  }
}

void PrivacyStore::TombstoneSources(std::shared_ptr<EraseRun> run) {
  auto b = Barrier::Make(run->sources.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.identifiers", &PrivacyStore::DropIdentifiers);
  });
  std::string now = absl::StrCat(NowMillis());
  for (const std::string& s : run->sources) {
    keys::CustomerKeys ck(run->tenant, s);
    client_->Eval(kTombstoneSource, {ck.profile(), ck.erased_profile()}, {now, ck.channel()},
                  run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::DropIdentifiers(std::shared_ptr<EraseRun> run) {
  std::set<std::string> fields;
  for (const auto& c : run->customers) {
    fields.insert(c.identifier_fields.begin(), c.identifier_fields.end());
  }
  auto b = Barrier::Make(fields.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.suggestions", &PrivacyStore::DropSuggestions);
  });
  std::vector<std::string> owners = run->all_ids();
  for (const std::string& field : fields) {
    size_t colon = field.find(':');
    std::string index =
        keys::IdentifierKey(run->tenant, keys::IdentifierTypeFromName(field.substr(0, colon)),
                            colon == std::string::npos ? "" : field.substr(colon + 1));
    client_->Eval(kDropIndex, {index}, owners, run->deadline,
                  [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::DropSuggestions(std::shared_ptr<EraseRun> run) {
  std::set<std::string> match_keys;
  for (const auto& c : run->customers) match_keys.insert(c.match_keys.begin(), c.match_keys.end());
  auto b = Barrier::Make(match_keys.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.engagement", &PrivacyStore::DropEngagement);
  });
  std::vector<std::string> ids = run->all_ids();
  for (const std::string& k : match_keys) {
    // A set left empty goes with its last member (and the value its key names with it).
    std::vector<std::string> cmd = {"SREM", identity::MatchSetKey(run->tenant, k)};
    cmd.insert(cmd.end(), ids.begin(), ids.end());
    client_->Command(std::move(cmd), run->deadline,
                     [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::DropEngagement(std::shared_ptr<EraseRun> run) {
  std::set<std::string> cases;
  std::set<std::string> stages(run->journey_stages.begin(), run->journey_stages.end());
  for (const auto& c : run->customers) {
    cases.insert(c.case_ids.begin(), c.case_ids.end());
    stages.insert(c.stages.begin(), c.stages.end());
  }
  std::vector<std::string> ids = run->all_ids();
  keys::TenantKeys tk(run->tenant);
  std::vector<std::vector<std::string>> commands;
  // Due promises and journey entries name the customer a case was with when it was written
  // (a merge moves them to its target): every pair of erased customer and case is removed.
  if (!cases.empty()) {
    std::vector<std::string> due = {"ZREM", keys::DuePromisesKey()};
    std::vector<std::string> members;
    for (const std::string& id : ids) {
      for (const std::string& c : cases) {
        due.push_back(absl::StrCat(run->tenant, "|", id, "|", c));
        members.push_back(absl::StrCat(id, "|", c));
      }
    }
    commands.push_back(std::move(due));
    for (const std::string& stage : stages) {
      std::vector<std::string> zrem = {"ZREM", absl::StrCat(tk.journey_prefix(), "open:", stage)};
      zrem.insert(zrem.end(), members.begin(), members.end());
      commands.push_back(std::move(zrem));
    }
  }
  std::vector<std::string> open = {"ZREM", tk.journey_open()};
  for (const auto& c : run->customers) {
    for (const auto& [entry, case_id] : c.journey_entries) {
      for (const std::string& id : ids) open.push_back(absl::StrCat(entry, id, "|", case_id));
    }
  }
  if (open.size() > 2) commands.push_back(std::move(open));
  std::vector<std::string> activity = {"ZREM", tk.activity()};
  activity.insert(activity.end(), ids.begin(), ids.end());
  commands.push_back(std::move(activity));
  auto b = Barrier::Make(commands.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.alerts", &PrivacyStore::DropAlerts);
  });
  for (auto& cmd : commands) {
    client_->Command(std::move(cmd), run->deadline,
                     [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::DropAlerts(std::shared_ptr<EraseRun> run) {
  keys::TenantKeys tk(run->tenant);
  client_->Eval(
      kDropAlertLog,
      {tk.alert_log(), tk.alert_log_rebuild(), tk.alert_ids(), tk.alert_open(), tk.alert_acks()},
      run->all_ids(), run->deadline, [this, run](absl::StatusOr<Reply> r) {
        if (!r.ok()) return run->done(r.status());
        DropAlertIds(run, "0");
      });
}

void PrivacyStore::DropAlertIds(std::shared_ptr<EraseRun> run, std::string cursor) {
  keys::TenantKeys tk(run->tenant);
  std::vector<std::string> args = {cursor};
  std::vector<std::string> ids = run->all_ids();
  args.insert(args.end(), ids.begin(), ids.end());
  client_->Eval(kDropAlertIds, {tk.alert_ids(), tk.alert_open(), tk.alert_acks()}, std::move(args),
                run->deadline, [this, run](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return run->done(r.status());
                  if (!r->is_array() || r->elements.size() != 2) {
                    return run->done(absl::InternalError("unexpected reply from alert ids script"));
                  }
                  std::string next = r->elements[0].str;
                  if (next != "0") return DropAlertIds(run, next);
                  Step(run, "erase.merges", &PrivacyStore::DropMerges);
                });
}

void PrivacyStore::DropMerges(std::shared_ptr<EraseRun> run) {
  std::set<std::string> merges;
  for (const auto& c : run->customers) merges.insert(c.merge_ids.begin(), c.merge_ids.end());
  auto b = Barrier::Make(merges.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.keys", &PrivacyStore::DropKeys);
  });
  std::vector<std::string> ids = run->all_ids();
  for (const std::string& m : merges) {
    std::string key = keys::MergeKey(run->tenant, m);
    // The record names the other customer of the merge: its history forgets the merge first.
    client_->Command(
        {"HGET", key, "rec"}, run->deadline, [this, run, b, key, m, ids](absl::StatusOr<Reply> r) {
          if (!r.ok()) return b->Arrive(r.status());
          v1::MergeRecord rec;
          std::vector<std::string> others;
          if (r->is_string() && rec.ParseFromString(r->str)) {
            for (const std::string& c : {rec.source_customer_id(), rec.target_customer_id()}) {
              if (!c.empty() && std::find(ids.begin(), ids.end(), c) == ids.end()) {
                others.push_back(c);
              }
            }
          }
          auto forget = [this, run, b, key, m]() {
            client_->Command(
                {"DEL", key}, run->deadline, [this, run, b, m](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return b->Arrive(r.status());
                  client_->Command(
                      {"SREM", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", m)},
                      run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
                });
          };
          auto each = Barrier::Make(others.size(), [b, forget](absl::Status st) mutable {
            if (!st.ok()) return b->Arrive(st);
            forget();
          });
          for (const std::string& o : others) {
            client_->Command({"ZREM", keys::CustomerKeys(run->tenant, o).merge_history(), m},
                             run->deadline,
                             [each](absl::StatusOr<Reply> r) { each->Arrive(r.status()); });
          }
        });
  }
}

void PrivacyStore::DropKeys(std::shared_ptr<EraseRun> run) {
  auto b = Barrier::Make(run->customers.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.done", &PrivacyStore::FinishErase);
  });
  std::string now = absl::StrCat(NowMillis());
  for (const auto& c : run->customers) {
    keys::CustomerKeys ck(run->tenant, c.id);
    std::vector<std::string> k = {ck.profile(),
                                  ck.identifiers(),
                                  ck.timeline(),
                                  ck.dedup(),
                                  ck.conversations(),
                                  ck.merge_state(),
                                  ck.merge_history(),
                                  ck.remap(),
                                  ck.conversation_records(),
                                  ck.cases(),
                                  ck.facts(),
                                  ck.contacts(),
                                  ck.contact_channels(),
                                  ck.signals(),
                                  ck.timeline_rebuild(),
                                  ck.redaction(),
                                  ck.erased_profile()};
    std::set<std::string> merges = c.merge_ids;
    merges.insert(c.staging_ids.begin(), c.staging_ids.end());
    for (const std::string& m : merges) {
      k.push_back(ck.merge_staging(m));
      k.push_back(ck.merge_staging_dedup(m));
      k.push_back(ck.merge_staging_remap(m));
    }
    client_->Eval(kDropKeys, std::move(k), {now}, run->deadline,
                  [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::FinishErase(std::shared_ptr<EraseRun> run) {
  client_->Command(
      {"HDEL", keys::PendingErasuresKey(), run->field()}, run->deadline,
      [run](absl::StatusOr<Reply> r) {
        if (!r.ok()) return run->done(r.status());
        Log(LogLevel::kInfo, "erase.done",
            {{"tenant", run->tenant},
             {"customer", run->root},
             {"merged", absl::StrJoin(run->sources, ",")},
             {"events", absl::StrCat(run->events)},
             {"identifiers", absl::StrCat(run->identifiers)}});
        v1::EraseCustomerResponse resp;
        resp.set_customer_id(run->root);
        for (const std::string& s : run->sources) resp.add_merged_customer_ids(s);
        resp.set_events_erased(std::max<int64_t>(0, run->events));
        resp.set_identifiers_erased(static_cast<int32_t>(std::max<int64_t>(0, run->identifiers)));
        run->done(std::move(resp));
      });
}

void PrivacyStore::RecoverPending(absl::Time deadline, Callback<int> done,
                                  absl::Duration older_than) {
  client_->Command(
      {"HGETALL", keys::PendingErasuresKey()}, deadline,
      [this, deadline, older_than, done = std::move(done)](absl::StatusOr<Reply> all) mutable {
        if (!all.ok()) return done(all.status());
        struct Due {
          std::string tenant, customer, record;
        };
        std::vector<Due> due;
        int64_t now = NowMillis();
        const auto& e = all->elements;
        for (size_t i = 0; i + 1 < e.size(); i += 2) {
          PendingRecord rec = ParseRecord(e[i + 1].str);
          if (now - rec.updated_ms < absl::ToInt64Milliseconds(older_than)) continue;
          std::pair<std::string, std::string> parts = absl::StrSplit(e[i].str, '/');
          if (ValidateTenant(parts.first).ok() && ValidateCustomerId("", parts.second).ok()) {
            due.push_back({parts.first, parts.second, e[i + 1].str});
          }
        }
        auto finished = std::make_shared<std::atomic<int>>(0);
        auto shared_done = std::make_shared<Callback<int>>(std::move(done));
        // Then the redactions.
        auto b = Barrier::Make(due.size(), [this, deadline, older_than, finished,
                                            shared_done](absl::Status) {
          RecoverRedactions(deadline, older_than, [finished, shared_done](absl::StatusOr<int> n) {
            if (!n.ok()) return (*shared_done)(n.status());
            (*shared_done)(finished->load() + *n);
          });
        });
        for (const Due& d : due) {
          Log(LogLevel::kInfo, "erase.recovering",
              {{"tenant", d.tenant}, {"customer", d.customer}});
          auto run = std::make_shared<EraseRun>();
          run->tenant = d.tenant;
          run->root = d.customer;
          run->deadline = deadline;
          run->done = [b, finished, d](absl::StatusOr<v1::EraseCustomerResponse> r) {
            if (r.ok()) {
              ++*finished;
            } else {
              Log(LogLevel::kWarning, "erase.recovery_failed",
                  {{"tenant", d.tenant},
                   {"customer", d.customer},
                   {"error", r.status().ToString()}});
            }
            b->Arrive(absl::OkStatus());
          };
          ContinueErase(run, d.record);
        }
      });
}

// ---- export
// --------------------------------------------------------------------------------------

namespace {

// Documents of one section: {"section":"<name>","<name>":[...]} with at most kExportPageSize
// items each, and at least one document.
void AddSection(const std::string& name, const std::vector<std::string>& items,
                std::vector<std::string>* documents) {
  size_t i = 0;
  do {
    std::string doc = absl::StrCat("{\"section\":", JsonQuote(name), ",", JsonQuote(name), ":[");
    for (size_t n = 0; i < items.size() && n < static_cast<size_t>(kExportPageSize); ++i, ++n) {
      if (n > 0) doc.push_back(',');
      doc += items[i];
    }
    doc += "]}";
    documents->push_back(std::move(doc));
  } while (i < items.size());
}

}  // namespace

void PrivacyStore::ExportBegin(const v1::ExportCustomerRequest& request, absl::Time deadline,
                               Callback<ExportHead> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  std::string tenant = request.tenant();
  auto shared_done = std::make_shared<Callback<ExportHead>>(std::move(done));
  using Read = std::pair<std::string, Reply>;
  identity_->ResolveRef(
      tenant, "customer", request.customer(), false, deadline,
      [this, tenant, deadline, shared_done](absl::StatusOr<identity::IdentityStore::Resolved> who) {
        if (!who.ok()) return (*shared_done)(who.status());
        identity::FollowMerges<Read>(
            who->customer_id,
            [this, tenant, deadline](const std::string& c, Callback<Read> cb) {
              keys::CustomerKeys ck(tenant, c);
              client_->Eval(kExportRead,
                            {ck.profile(), ck.identifiers(), ck.conversation_records(), ck.cases(),
                             ck.facts()},
                            {c}, deadline,
                            [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                              if (!r.ok()) return cb(r.status());
                              cb(Read{c, *std::move(r)});
                            });
            },
            [this, tenant, deadline, shared_done](absl::StatusOr<Read> read) {
              if (!read.ok()) return (*shared_done)(read.status());
              if (!read->second.is_array() || read->second.elements.size() != 5) {
                return (*shared_done)(absl::InternalError("unexpected reply from export script"));
              }
              auto r = std::make_shared<Read>(*std::move(read));
              FindMergedSources(
                  client_, tenant, r->first, deadline,
                  [r, shared_done](absl::StatusOr<std::vector<MergedSource>> merged) {
                    if (!merged.ok()) return (*shared_done)(merged.status());
                    const std::string& cid = r->first;
                    const auto& e = r->second.elements;
                    ExportHead head;
                    head.customer_id = cid;
                    v1::Profile profile = identity::ProfileFromHashes(cid, e[0], e[1]);
                    std::string doc =
                        absl::StrCat("{\"section\":\"profile\",\"customer_id\":", JsonQuote(cid),
                                     ",\"profile\":", ToJson(profile), ",\"merged_customers\":[");
                    for (size_t i = 0; i < merged->size(); ++i) {
                      const MergedSource& m = (*merged)[i];
                      absl::StrAppend(&doc, i > 0 ? "," : "",
                                      "{\"customer_id\":", JsonQuote(m.customer_id),
                                      ",\"merge_id\":", JsonQuote(m.merge_id),
                                      ",\"merged_into\":", JsonQuote(m.into),
                                      ",\"merged_at\":", ToJson(FromMillis(m.merged_at_ms)), "}");
                    }
                    doc += "]}";
                    head.documents.push_back(std::move(doc));
                    // Records by id, for a stable order.
                    auto sorted = [](const Reply& hash) {
                      std::map<std::string, std::string> out;
                      for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
                        out[hash.elements[i].str] = hash.elements[i + 1].str;
                      }
                      return out;
                    };
                    std::vector<std::string> items;
                    for (const auto& [id, json] : sorted(e[2])) {
                      absl::StatusOr<google::protobuf::Struct> s = engagement::ParseRecord(json);
                      if (!s.ok()) return (*shared_done)(s.status());
                      items.push_back(ToJson(engagement::ConversationFromRecord(id, cid, *s)));
                    }
                    head.conversations = static_cast<int64_t>(items.size());
                    AddSection("conversations", items, &head.documents);
                    items.clear();
                    for (const auto& [id, json] : sorted(e[3])) {
                      absl::StatusOr<google::protobuf::Struct> s = engagement::ParseRecord(json);
                      if (!s.ok()) return (*shared_done)(s.status());
                      items.push_back(ToJson(engagement::CaseFromRecord(id, cid, *s)));
                    }
                    head.cases = static_cast<int64_t>(items.size());
                    AddSection("cases", items, &head.documents);
                    items.clear();
                    for (const auto& [id, json] : sorted(e[4])) {
                      absl::StatusOr<google::protobuf::Struct> s = engagement::ParseRecord(json);
                      if (!s.ok()) return (*shared_done)(s.status());
                      items.push_back(ToJson(engagement::FactFromRecord(*s)));
                    }
                    head.facts = static_cast<int64_t>(items.size());
                    AddSection("facts", items, &head.documents);
                    (*shared_done)(std::move(head));
                  });
            });
      });
}

void PrivacyStore::ExportEvents(const std::string& tenant, const std::string& customer_id,
                                const std::string& after, absl::Time deadline,
                                Callback<EventPage> done) {
  keys::CustomerKeys ck(tenant, customer_id);
  std::string start = after.empty() || after == "0-0" ? "-" : absl::StrCat("(", after);
  client_->Eval(kExportRange, {ck.profile(), ck.timeline()},
                {customer_id, start, absl::StrCat(kExportPageSize)}, deadline,
                [customer_id, after, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                  if (!r.ok()) return done(r.status());
                  EventPage page;
                  page.last_stream_id = after;
                  std::vector<std::string> items;
                  for (const Reply& entry : r->elements) {
                    absl::StatusOr<v1::Event> e = timeline::EventFromEntry(customer_id, entry);
                    if (!e.ok()) return done(e.status());
                    items.push_back(ToJson(*e));
                    page.last_stream_id = entry.elements[0].str;
                  }
                  page.count = static_cast<int>(items.size());
                  if (!items.empty()) {
                    std::vector<std::string> docs;
                    AddSection("events", items, &docs);
                    page.document = std::move(docs[0]);
                  }
                  done(std::move(page));
                });
}

std::string PrivacyStore::ExportEnd(const ExportHead& head, int64_t events) {
  return absl::StrCat("{\"section\":\"end\",\"customer_id\":", JsonQuote(head.customer_id),
                      ",\"counts\":{\"conversations\":", head.conversations,
                      ",\"cases\":", head.cases, ",\"facts\":", head.facts, ",\"events\":", events,
                      "}}");
}

}  // namespace onestory::privacy
