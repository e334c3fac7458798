#include "libs/engagement/alert_store.h"

#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/barrier.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_alert_ack.h"
#include "libs/lua/engagement_alert_list.h"
#include "libs/lua/engagement_alert_promise.h"
#include "libs/lua/engagement_alert_read.h"
#include "libs/outbox/outbox.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;

constexpr int kScanBatch = 100;

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
    } else if (k == "at") {
      int64_t at = 0;
      if (absl::SimpleAtoi(v, &at)) *a.mutable_raised_at() = FromMillis(at);
    }
  }
  // Entries written before alerts went through the outbox have no "at": raised when logged.
  if (!a.has_raised_at()) *a.mutable_raised_at() = FromMillis(timeline::StreamIdMillis(sid));
  a.set_cursor(timeline::EncodeCursor(CursorOwner(tenant), sid));
  if (!r.elements[2].str.empty()) {
    absl::StatusOr<google::protobuf::Struct> ack = ParseRecord(r.elements[2].str);
    if (!ack.ok()) return ack.status();
    AckFromRecord(*ack, &a);
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
  lua::EngagementAlertList call;
  call.alert_log = tk.alert_log();
  call.alert_open = tk.alert_open();
  call.alert_acks = tk.alert_acks();
  call.all = all ? 1 : 0;
  call.page_size = size;
  call.start = start;
  ctx_.client->Fcall(
      call, deadline, [tenant, all, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (!r->is_array() || r->elements.size() != 3) {
          return done(absl::InternalError("unexpected reply from engagement_alert_list"));
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
  lua::EngagementAlertAck call;
  call.alert_ids = tk.alert_ids();
  call.alert_open = tk.alert_open();
  call.alert_acks = tk.alert_acks();
  call.alert_log = tk.alert_log();
  call.alert_id = req.alert_id();
  call.actor_type = static_cast<int>(req.actor().type());
  call.actor_id = req.actor().id();
  call.now_ms = NowMillis();
  ctx_.client->Fcall(call, deadline,
                     [tenant, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                       if (!r.ok()) return done(r.status());
                       done(AlertFromReply(tenant, *r));
                     });
}

void AlertStore::ReadAfter(const std::string& tenant, const std::string& after, int max,
                           absl::Time deadline, Callback<Batch> done) {
  keys::TenantKeys tk(tenant);
  lua::EngagementAlertRead call;
  call.alert_log = tk.alert_log();
  call.alert_acks = tk.alert_acks();
  call.after = after;
  call.count = max;
  ctx_.client->Fcall(call, deadline,
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
  // Every bucket of the index (keys::DuePromisesKey(bucket)), in parallel; the first error, or
  // the number of promises checked in all.
  struct Total {
    std::atomic<int> checked{0};
    Callback<int> done;
  };
  auto total = std::make_shared<Total>();
  total->done = std::move(done);
  auto all = Barrier::Make(keys::kDueBuckets, [total](absl::Status st) {
    if (!st.ok()) return total->done(st);
    total->done(total->checked.load());
  });
  for (int bucket = 0; bucket < keys::kDueBuckets; ++bucket) {
    ScanDueBucket(bucket, deadline, [total, all](absl::StatusOr<int> n) {
      if (n.ok()) total->checked += *n;
      all->Arrive(n.status());
    });
  }
}

void AlertStore::ScanDueBucket(int bucket, absl::Time deadline, Callback<int> done) {
  int64_t now = NowMillis();
  const std::string index = keys::DuePromisesKey(bucket);
  ctx_.client->Command(
      {"ZRANGEBYSCORE", index, "-inf", absl::StrCat(now), "WITHSCORES", "LIMIT", "0",
       absl::StrCat(kScanBatch)},
      deadline,
      [this, now, deadline, index, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
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
            ctx_.client->Command({"ZREM", index, member}, deadline,
                                 [finish](absl::StatusOr<Reply>) { finish(); });
            continue;
          }
          lua::EngagementAlertPromise call;
          SetEffects(parts[0], parts[1], now, "", "", ctx_.policy, &call);
          call.member = member;
          call.case_id = parts[2];
          call.due_ms = static_cast<int64_t>(due);
          call.due_text =
              google::protobuf::util::TimeUtil::ToString(FromMillis(static_cast<int64_t>(due)));
          ctx_.client->Fcall(
              call, deadline,
              [this, finish, member, index, tenant = parts[0], customer = parts[1],
               deadline](absl::StatusOr<Reply> r) {
                if (!r.ok()) {
                  Log(LogLevel::kWarning, "promise.check_failed",
                      {{"promise", member}, {"error", r.status().ToString()}});
                  return finish();
                }
                if (r->integer == 2) {
                  // No such case any more (its customer erased or merged): nothing will forget it.
                  return ctx_.client->Command({"ZREM", index, member}, deadline,
                                              [finish](absl::StatusOr<Reply>) { finish(); });
                }
                if (r->integer == 1)
                  Log(LogLevel::kInfo, "alert.promise_overdue", {{"promise", member}});
                // The alert and the promise's removal from the index are in the customer's outbox.
                outbox::Settle(ctx_.client, tenant, customer, deadline,
                               [finish, member](absl::Status st) {
                                 if (!st.ok()) {
                                   Log(LogLevel::kWarning, "promise.alert_not_scheduled",
                                       {{"promise", member}, {"error", st.ToString()}});
                                 }
                                 finish();
                               });
              });
        }
      });
}

}  // namespace onestory::engagement
