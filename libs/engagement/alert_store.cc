#include "libs/engagement/alert_store.h"

#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;
using redis::Script;

constexpr int kScanBatch = 100;

// KEYS: log, open, acks. ARGV: '1' to include acknowledged alerts, page size, start ('+' or
// '(<stream id>'). Examines at most 2,000 alerts per call. Returns {more (0|1), last stream id
// examined, {{sid, fields, ack}...}}.
const Script kList("alerts.list", R"lua(
local all, size, start = ARGV[1] == '1', tonumber(ARGV[2]), ARGV[3]
local out, examined, last, more = {}, 0, '', 0
while more == 0 do
  local batch = redis.call('XREVRANGE', KEYS[1], start, '-', 'COUNT', 200)
  for _, e in ipairs(batch) do
    if #out >= size or examined >= 2000 then more = 1; break end
    examined = examined + 1
    last = e[1]
    local id = e[2][2]
    local open = redis.call('ZSCORE', KEYS[2], id)
    if all or open then out[#out + 1] = {e[1], e[2], redis.call('HGET', KEYS[3], id) or ''} end
  end
  if #batch < 200 then break end
  start = '(' .. batch[#batch][1]
end
return {more, last, out}
)lua");

// KEYS: ids, open, acks, log. ARGV: alert id, actor type, actor id, now ms.
// Returns {sid, fields, ack JSON}.
const Script kAck("alerts.ack", R"lua(
local sid = redis.call('HGET', KEYS[1], ARGV[1])
if not sid or sid == '-' then
  return redis.error_reply('OS_NOT_FOUND alert_id: no alert ' .. ARGV[1])
end
local a = redis.call('HGET', KEYS[3], ARGV[1])
if not a then
  a = cjson.encode({bt = tonumber(ARGV[2]), bi = ARGV[3], at = tonumber(ARGV[4])})
  redis.call('HSET', KEYS[3], ARGV[1], a)
  redis.call('ZREM', KEYS[2], ARGV[1])
end
local e = redis.call('XRANGE', KEYS[4], sid, sid)
local fields = {'id', ARGV[1]}
if #e > 0 then fields = e[1][2] end
return {sid, fields, a}
)lua");

// KEYS: log, acks. ARGV: after (exclusive), count. Returns {{sid, fields, ack}...}.
const Script kReadAfter("alerts.read", R"lua(
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])) do
  out[#out + 1] = {e[1], e[2], redis.call('HGET', KEYS[2], e[2][2]) or ''}
end
return out
)lua");

// An effects script. ARGV after the effect arguments: due member, case id, due time (text).
// Raises PROMISE_OVERDUE when the promise is still due, its case open and not updated since the
// promise; forgets the member unless it was moved to a later time.
const Script kCheckPromise("alerts.promise",
                           absl::StrCat(identity::kGuardLua, timeline::kEventEffectsLua, R"lua(
local member, id = ARGV[13], ARGV[14]
local score = tonumber(redis.call('ZSCORE', K.due, member) or '-1')
if score < 0 or score > P.now then return 0 end
local c = os_case_get(id)
local raised = 0
if c and c.s == 'o' and c.pb == score and (c.uc or 0) == (c.pu or 0) then
  os_raise_alert('promise_overdue:' .. P.cid .. ':' .. id .. ':' .. string.format('%d', c.pb), 1,
                 id, string.format('promise "%s" to customer %s (case "%s") was due %s; the ' ..
                                   'case has had no update since', c.pt, P.cid, c.tp, ARGV[15]))
  raised = 1
end
redis.call('ZREM', K.due, member)
return raised
)lua"));

std::string CursorOwner(absl::string_view tenant) { return absl::StrCat("alerts:", tenant); }

// One alert from {sid, fields, ack JSON}.
absl::StatusOr<v1::Alert> AlertFromReply(const std::string& tenant, const Reply& r) {
  if (!r.is_array() || r.elements.size() != 3 || !r.elements[1].is_array()) {
    return absl::InternalError("malformed alert entry");
  }
  v1::Alert a;
  const std::string& sid = r.elements[0].str;
  const auto& f = r.elements[1].elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    const std::string& k = f[i].str;
    const std::string& v = f[i + 1].str;
    if (k == "id") {
      a.set_alert_id(v);
    } else if (k == "k") {
      int kind = 0;
      if (absl::SimpleAtoi(v, &kind) && v1::AlertKind_IsValid(kind)) {
        a.set_kind(static_cast<v1::AlertKind>(kind));
      }
    } else if (k == "c") {
      a.set_customer_id(v);
    } else if (k == "ca") {
      a.set_case_id(v);
    } else if (k == "msg") {
      a.set_message(v);
    }
  }
  *a.mutable_raised_at() = FromMillis(timeline::StreamIdMillis(sid));
  a.set_cursor(timeline::EncodeCursor(CursorOwner(tenant), sid));
  if (!r.elements[2].str.empty()) {
    absl::StatusOr<google::protobuf::Struct> ack = ParseRecord(r.elements[2].str);
    if (!ack.ok()) return ack.status();
    a.set_acknowledged(true);
    const auto& fields = ack->fields();
    auto num = [&](const char* key) -> int64_t {
      auto it = fields.find(key);
      return it == fields.end() ? 0 : static_cast<int64_t>(it->second.number_value());
    };
    int type = static_cast<int>(num("bt"));
    if (v1::Actor::Type_IsValid(type) && type != 0) {
      a.mutable_acknowledged_by()->set_type(static_cast<v1::Actor::Type>(type));
      auto it = fields.find("bi");
      if (it != fields.end()) a.mutable_acknowledged_by()->set_id(it->second.string_value());
    }
    *a.mutable_acknowledged_at() = FromMillis(num("at"));
  }
  return a;
}

}  // namespace

std::string AlertStore::Channel(const std::string& tenant) {
  return keys::TenantKeys(tenant).alert_channel();
}

absl::StatusOr<std::string> AlertStore::StartAfter(const v1::WatchAlertsRequest& req) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return st;
  if (!req.after_cursor().empty()) {
    return timeline::DecodeCursor("after_cursor", req.after_cursor(), CursorOwner(req.tenant()));
  }
  return req.from_start() ? std::string("0-0") : std::string();
}

void AlertStore::List(const v1::ListAlertsRequest& req, absl::Time deadline,
                      Callback<v1::ListAlertsResponse> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  if (req.page_size() < 0 || req.page_size() > kMaxAlertPageSize) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("page_size: must be between 0 and ", kMaxAlertPageSize)));
  }
  std::string start = "+";
  if (!req.page_token().empty()) {
    // Page tokens carry whether acknowledged alerts are included, so one query's token cannot
    // page another.
    std::string owner =
        absl::StrCat(CursorOwner(req.tenant()), req.include_acknowledged() ? ":all" : ":open");
    absl::StatusOr<std::string> sid = timeline::DecodeCursor("page_token", req.page_token(), owner);
    if (!sid.ok()) return done(sid.status());
    start = absl::StrCat("(", *sid);
  }
  int size = req.page_size() == 0 ? kDefaultAlertPageSize : req.page_size();
  std::string tenant = req.tenant();
  bool all = req.include_acknowledged();
  keys::TenantKeys tk(tenant);
  ctx_.client->Eval(
      kList, {tk.alert_log(), tk.alert_open(), tk.alert_acks()},
      {all ? "1" : "0", absl::StrCat(size), start}, deadline,
      [tenant, all, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (!r->is_array() || r->elements.size() != 3) {
          return done(absl::InternalError("unexpected reply from alert list script"));
        }
        v1::ListAlertsResponse resp;
        for (const Reply& e : r->elements[2].elements) {
          absl::StatusOr<v1::Alert> a = AlertFromReply(tenant, e);
          if (!a.ok()) return done(a.status());
          *resp.add_alerts() = *std::move(a);
        }
        if (r->elements[0].integer == 1) {
          resp.set_next_page_token(timeline::EncodeCursor(
              absl::StrCat(CursorOwner(tenant), all ? ":all" : ":open"), r->elements[1].str));
        }
        done(std::move(resp));
      });
}

void AlertStore::Ack(const v1::AckAlertRequest& req, absl::Time deadline,
                     Callback<v1::Alert> done) {
  absl::Status st = ValidateTenant(req.tenant());
  if (st.ok() && req.alert_id().empty()) st = absl::InvalidArgumentError("alert_id: required");
  if (st.ok()) st = ValidateText("alert_id", req.alert_id(), 512, false);
  if (st.ok()) st = ValidateActor("actor", req.actor(), true);
  if (!st.ok()) return done(st);
  keys::TenantKeys tk(req.tenant());
  std::string tenant = req.tenant();
  ctx_.client->Eval(kAck, {tk.alert_ids(), tk.alert_open(), tk.alert_acks(), tk.alert_log()},
                    {req.alert_id(), absl::StrCat(static_cast<int>(req.actor().type())),
                     req.actor().id(), absl::StrCat(NowMillis())},
                    deadline, [tenant, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      done(AlertFromReply(tenant, *r));
                    });
}

void AlertStore::ReadAfter(const std::string& tenant, const std::string& after, int max,
                           absl::Time deadline, Callback<Batch> done) {
  keys::TenantKeys tk(tenant);
  ctx_.client->Eval(kReadAfter, {tk.alert_log(), tk.alert_acks()}, {after, absl::StrCat(max)},
                    deadline,
                    [tenant, after, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                      if (!r.ok()) return done(r.status());
                      Batch batch;
                      batch.last_stream_id = after;
                      for (const Reply& e : r->elements) {
                        absl::StatusOr<v1::Alert> a = AlertFromReply(tenant, e);
                        if (!a.ok()) return done(a.status());
                        batch.alerts.push_back(*std::move(a));
                        batch.last_stream_id = e.elements[0].str;
                      }
                      done(std::move(batch));
                    });
}

void AlertStore::Head(const std::string& tenant, absl::Time deadline, Callback<std::string> done) {
  ctx_.client->Command({"XREVRANGE", keys::TenantKeys(tenant).alert_log(), "+", "-", "COUNT", "1"},
                       deadline, [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                         if (!r.ok()) return done(r.status());
                         if (r->elements.empty()) return done(std::string("0-0"));
                         done(r->elements[0].elements[0].str);
                       });
}

void AlertStore::ScanDuePromises(absl::Time deadline, Callback<int> done) {
  int64_t now = NowMillis();
  ctx_.client->Command(
      {"ZRANGEBYSCORE", keys::DuePromisesKey(), "-inf", absl::StrCat(now), "WITHSCORES", "LIMIT",
       "0", absl::StrCat(kScanBatch)},
      deadline, [this, now, deadline, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        size_t n = r->elements.size() / 2;
        if (n == 0) return done(0);
        struct Pending {
          std::atomic<size_t> left;
          Callback<int> done;
        };
        auto pending = std::make_shared<Pending>();
        pending->left = n;
        pending->done = std::move(done);
        auto finish = [pending, n] {
          if (pending->left.fetch_sub(1) == 1) pending->done(static_cast<int>(n));
        };
        for (size_t i = 0; i < n; ++i) {
          std::string member = r->elements[2 * i].str;
          double due = 0;
          absl::SimpleAtod(r->elements[2 * i + 1].str, &due);
          std::vector<std::string> parts = absl::StrSplit(member, absl::MaxSplits('|', 2));
          if (parts.size() != 3 || !ValidateTenant(parts[0]).ok() ||
              !ValidateCustomerId("customer", parts[1]).ok()) {
            Log(LogLevel::kWarning, "promise.malformed_entry", {{"member", member}});
            ctx_.client->Command({"ZREM", keys::DuePromisesKey(), member}, deadline,
                                 [finish](absl::StatusOr<Reply>) { finish(); });
            continue;
          }
          std::vector<std::string> args =
              timeline::EffectArgs(parts[0], parts[1], now, "", "", ctx_.policy);
          args.push_back(member);
          args.push_back(parts[2]);
          args.push_back(
              google::protobuf::util::TimeUtil::ToString(FromMillis(static_cast<int64_t>(due))));
          ctx_.client->Eval(
              kCheckPromise, timeline::EffectKeys(parts[0], parts[1]), std::move(args), deadline,
              [finish, member](absl::StatusOr<Reply> r) {
                if (!r.ok()) {
                  Log(LogLevel::kWarning, "promise.check_failed",
                      {{"promise", member}, {"error", r.status().ToString()}});
                } else if (r->integer == 1) {
                  Log(LogLevel::kInfo, "alert.promise_overdue", {{"promise", member}});
                }
                finish();
              });
        }
      });
}

}  // namespace onestory::engagement
