#include "libs/engagement/alert_store.h"

#include <algorithm>
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
#include "libs/timeline/bucket_cursor.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;

constexpr int kScanBatch = 100;

// WatchAlerts cursors (and each alert's cursor); ListAlerts page tokens add the query.
std::string CursorOwner(absl::string_view tenant) { return absl::StrCat("alerts:", tenant); }
std::string PageOwner(absl::string_view tenant, bool all) {
  return absl::StrCat(CursorOwner(tenant), all ? ":all" : ":open");
}

// One alert from {sid, fields, ack JSON}; its cursor is given.
absl::StatusOr<v1::Alert> AlertFromReply(const Reply& r, std::string cursor) {
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
  a.set_cursor(std::move(cursor));
  if (!r.elements[2].str.empty()) {
    absl::StatusOr<Record> ack = ParseRecord(r.elements[2].str);
    if (!ack.ok()) return ack.status();
    AckFromRecord(*ack, &a);
  }
  return a;
}

// The cursor of an alert listed from `bucket`: WatchAlerts resumes after it in the merged order.
std::string ListedCursor(absl::string_view tenant, int bucket, absl::string_view sid) {
  return timeline::EncodeBucketCursor(CursorOwner(tenant), timeline::PositionsAfter(bucket, sid));
}

// Runs one function call per bucket, all at once (each in its bucket's slot), and hands their
// replies over in bucket order once all have answered; the first error fails the whole.
template <typename Call>
void CallEveryBucket(redis::Client* client, std::vector<Call> calls, absl::Time deadline,
                     Callback<std::vector<Reply>> done) {
  auto replies = std::make_shared<std::vector<Reply>>(calls.size());
  auto b = Barrier::Make(calls.size(), [replies, done = std::move(done)](absl::Status st) mutable {
    if (!st.ok()) return done(st);
    done(std::move(*replies));
  });
  for (size_t i = 0; i < calls.size(); ++i) {
    client->Fcall(calls[i], deadline, [replies, b, i](absl::StatusOr<Reply> r) {
      if (r.ok()) (*replies)[i] = *std::move(r);
      b->Arrive(r.status());
    });
  }
}

}  // namespace

std::vector<std::string> AlertStore::Channels(const std::string& tenant) {
  std::vector<std::string> out;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    out.push_back(keys::TenantKeys(tenant, b).alert_channel());
  }
  return out;
}

absl::StatusOr<int> AlertStore::BucketOf(absl::string_view alert_id) {
  // "<kind>:<customer>:<...>" (libs/timeline/lua/effects.lua, lua/alert_promise.lua).
  std::vector<absl::string_view> parts = absl::StrSplit(alert_id, absl::MaxSplits(':', 2));
  if (parts.size() != 3 || parts[0].empty() || !ValidateCustomerId("alert_id", parts[1]).ok()) {
    return absl::InvalidArgumentError(
        "alert_id: not an alert id (\"<kind>:<customer>:...\", as ListAlerts returns them)");
  }
  return keys::TenantBucket(parts[1]);
}

absl::StatusOr<std::optional<timeline::BucketPositions>> AlertStore::StartAfter(
    const v1::WatchAlertsRequest& req) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return st;
  if (!req.after_cursor().empty()) {
    absl::StatusOr<timeline::BucketPositions> p =
        timeline::DecodeBucketCursor("after_cursor", req.after_cursor(), CursorOwner(req.tenant()));
    if (!p.ok()) return p.status();
    return std::optional<timeline::BucketPositions>(*std::move(p));
  }
  if (req.from_start())
    return std::optional<timeline::BucketPositions>(timeline::BucketPositions{});
  return std::optional<timeline::BucketPositions>();
}

void AlertStore::List(const v1::ListAlertsRequest& req, absl::Time deadline,
                      Callback<v1::ListAlertsResponse> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  if (req.page_size() < 0 || req.page_size() > kMaxAlertPageSize) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("page_size: must be between 0 and ", kMaxAlertPageSize)));
  }
  const std::string tenant = req.tenant();
  const bool all = req.include_acknowledged();
  // Page tokens carry whether acknowledged alerts are included, so one query's token cannot
  // page another.
  timeline::BucketPositions from;
  if (!req.page_token().empty()) {
    absl::StatusOr<timeline::BucketPositions> p =
        timeline::DecodeBucketCursor("page_token", req.page_token(), PageOwner(tenant, all));
    if (!p.ok()) return done(p.status());
    from = *std::move(p);
  }
  const int size = req.page_size() == 0 ? kDefaultAlertPageSize : req.page_size();
  // The call's examining budget is shared by the buckets (16 × 2,000 cost ~170 ms of Redis
  // time on a first page of open alerts among 40,000: tools/read_cost.py).
  const int share = kAlertListMaxExamined / keys::kTenantBuckets;
  const int max_examined = all ? std::max(size, share) : share;
  std::vector<lua::EngagementAlertList> calls(keys::kTenantBuckets);
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    keys::TenantKeys tk(tenant, b);
    calls[b].alert_log = tk.alert_log();
    calls[b].alert_open = tk.alert_open();
    calls[b].alert_acks = tk.alert_acks();
    calls[b].all = all ? 1 : 0;
    calls[b].page_size = size;
    calls[b].start = from[b].empty() ? std::string("+") : absl::StrCat("(", from[b]);
    // Listing every alert, a page (and one to see whether more follow) is all a bucket reads:
    // the cost is in the entries read (~4 µs each inside the function: tools/read_cost.py).
    calls[b].batch = std::min(kAlertListBatch, (all ? size : max_examined) + 1);
    calls[b].max_examined = max_examined;
  }
  CallEveryBucket(
      ctx_.client, std::move(calls), deadline,
      [tenant, all, size, from,
       done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) mutable {
        if (!replies.ok()) return done(replies.status());
        std::vector<timeline::BucketRead> reads(replies->size());
        for (size_t b = 0; b < replies->size(); ++b) {
          const Reply& r = (*replies)[b];
          if (!r.is_array() || r.elements.size() != 3 || !r.elements[2].is_array()) {
            return done(absl::InternalError("unexpected reply from engagement_alert_list"));
          }
          for (const Reply& e : r.elements[2].elements) {
            if (!e.is_array() || e.elements.empty()) {
              return done(absl::InternalError("malformed alert entry"));
            }
            reads[b].ids.push_back(e.elements[0].str);
          }
          reads[b].more = r.elements[0].integer == 1;
          reads[b].last = r.elements[1].str;
        }
        timeline::MergedPage page =
            timeline::MergeNewestFirst(reads, from, static_cast<size_t>(size));
        v1::ListAlertsResponse resp;
        for (const auto& [b, i] : page.picked) {
          const Reply& e = (*replies)[b].elements[2].elements[i];
          absl::StatusOr<v1::Alert> a =
              AlertFromReply(e, ListedCursor(tenant, b, e.elements[0].str));
          if (!a.ok()) return done(a.status());
          *resp.add_alerts() = *std::move(a);
        }
        if (page.more) {
          resp.set_next_page_token(timeline::EncodeBucketCursor(PageOwner(tenant, all), page.next));
        }
        done(std::move(resp));
      });
}

void AlertStore::Ack(const v1::AckAlertRequest& req, absl::Time deadline,
                     Callback<v1::Alert> done) {
  absl::Status st = ValidateTenant(req.tenant());
  if (st.ok() && req.alert_id().empty()) st = absl::InvalidArgumentError("alert_id: required");
  if (st.ok()) st = ValidateText("alert_id", req.alert_id(), 512, false);
  absl::StatusOr<int> bucket = st.ok() ? BucketOf(req.alert_id()) : absl::StatusOr<int>(st);
  if (st.ok()) st = bucket.status();
  if (st.ok()) st = ValidateActor("actor", req.actor(), true);
  if (!st.ok()) return done(st);
  keys::TenantKeys tk(req.tenant(), *bucket);
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
  ctx_.client->Fcall(
      call, deadline,
      [tenant, b = *bucket, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (!r->is_array() || r->elements.empty()) {
          return done(absl::InternalError("unexpected reply from engagement_alert_ack"));
        }
        done(AlertFromReply(*r, ListedCursor(tenant, b, r->elements[0].str)));
      });
}

void AlertStore::ReadAfter(const std::string& tenant, const timeline::BucketPositions& after,
                           int max, absl::Time deadline, Callback<Batch> done) {
  std::vector<lua::EngagementAlertRead> calls(keys::kTenantBuckets);
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    keys::TenantKeys tk(tenant, b);
    calls[b].alert_log = tk.alert_log();
    calls[b].alert_acks = tk.alert_acks();
    calls[b].after = after[b].empty() ? std::string("0-0") : after[b];
    calls[b].count = max;
  }
  CallEveryBucket(ctx_.client, std::move(calls), deadline,
                  [tenant, after, max,
                   done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) mutable {
                    if (!replies.ok()) return done(replies.status());
                    std::vector<timeline::BucketRead> reads(replies->size());
                    for (size_t b = 0; b < replies->size(); ++b) {
                      for (const Reply& e : (*replies)[b].elements) {
                        if (!e.is_array() || e.elements.empty()) {
                          return done(absl::InternalError("malformed alert entry"));
                        }
                        reads[b].ids.push_back(e.elements[0].str);
                      }
                      reads[b].more = static_cast<int>(reads[b].ids.size()) >= max;
                    }
                    timeline::MergedPage page = timeline::MergeOldestFirst(reads, after);
                    Batch batch;
                    batch.more = page.more;
                    timeline::BucketPositions at = after;
                    for (const auto& [b, i] : page.picked) {
                      const Reply& e = (*replies)[b].elements[i];
                      at[b] = e.elements[0].str;
                      absl::StatusOr<v1::Alert> a =
                          AlertFromReply(e, timeline::EncodeBucketCursor(CursorOwner(tenant), at));
                      if (!a.ok()) return done(a.status());
                      batch.alerts.push_back(*std::move(a));
                    }
                    batch.positions = std::move(at);
                    done(std::move(batch));
                  });
}

void AlertStore::Head(const std::string& tenant, absl::Time deadline,
                      Callback<timeline::BucketPositions> done) {
  struct Heads {
    timeline::BucketPositions positions;
  };
  auto heads = std::make_shared<Heads>();
  auto b =
      Barrier::Make(keys::kTenantBuckets, [heads, done = std::move(done)](absl::Status st) mutable {
        if (!st.ok()) return done(st);
        done(std::move(heads->positions));
      });
  for (int i = 0; i < keys::kTenantBuckets; ++i) {
    ctx_.client->Command(
        {"XREVRANGE", keys::TenantKeys(tenant, i).alert_log(), "+", "-", "COUNT", "1"}, deadline,
        [heads, b, i](absl::StatusOr<Reply> r) {
          if (r.ok()) {
            heads->positions[i] = r->elements.empty() ? "0-0" : r->elements[0].elements[0].str;
          }
          b->Arrive(r.status());
        });
  }
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
