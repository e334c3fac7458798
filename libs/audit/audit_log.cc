#include "libs/audit/audit_log.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/barrier.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/audit_list.h"
#include "libs/timeline/bucket_cursor.h"

namespace onestory::audit {
namespace {

using redis::Reply;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// How long one write may take; a held entry is tried again later anyway.
constexpr absl::Duration kWriteTimeout = absl::Seconds(10);

std::string TokenOwner(absl::string_view tenant, absl::string_view customer) {
  return absl::StrCat("audit:", tenant, ":", customer);
}

// Each bucket keeps its share of the tenant's max_entries.
int64_t BucketMaxEntries(int64_t max_entries) {
  return (max_entries + keys::kTenantBuckets - 1) / keys::kTenantBuckets;
}

}  // namespace

AuditLog::AuditLog(redis::Client* redis, Options options) : redis_(redis), options_(options) {
  retry_thread_ = std::thread([this] { RetryLoop(); });
}

AuditLog::~AuditLog() {
  stop_.Notify();
  retry_thread_.join();
  RetryHeld();
  absl::MutexLock lock(&mu_);
  // Every write ends by its deadline; callbacks capture `this`, so all are waited for.
  auto settled = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  mu_.Await(absl::Condition(&settled));
  if (!held_.empty()) {
    dropped_.fetch_add(held_.size(), std::memory_order_relaxed);
    Log(LogLevel::kError, "audit.entries_lost",
        {{"entries", absl::StrCat(held_.size())},
         {"why", "the process is stopping and Redis still refuses them"}});
    held_.clear();
  }
}

int AuditLog::BucketOf(absl::string_view customer_id) {
  if (!customer_id.empty()) return keys::TenantBucket(customer_id);
  return static_cast<int>(next_bucket_.fetch_add(1, std::memory_order_relaxed) %
                          keys::kTenantBuckets);
}

void AuditLog::Record(absl::string_view tenant, v1::AuditEntry entry) {
  if (!entry.has_at()) {
    int64_t micros = absl::ToUnixMicros(absl::Now());
    entry.mutable_at()->set_seconds(micros / 1000000);
    entry.mutable_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  }
  auto held = std::make_shared<Held>(
      Held{std::string(tenant), entry.customer_id(), entry.SerializeAsString()});
  Write(*held, absl::Now() + kWriteTimeout, [this, held](absl::Status st) {
    if (!st.ok()) Hold(std::move(*held), st);
  });
}

void AuditLog::RecordBefore(absl::string_view tenant, v1::AuditEntry entry, absl::Time deadline,
                            absl::AnyInvocable<void(absl::Status)> done) {
  if (!entry.has_at()) {
    int64_t micros = absl::ToUnixMicros(absl::Now());
    entry.mutable_at()->set_seconds(micros / 1000000);
    entry.mutable_at()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  }
  std::string method = entry.method();
  Write(Held{std::string(tenant), entry.customer_id(), entry.SerializeAsString()},
        std::min(deadline, absl::Now() + kWriteTimeout),
        [tenant = std::string(tenant), method, done = std::move(done)](absl::Status st) mutable {
          if (!st.ok()) {
            Log(LogLevel::kWarning, "audit.refused_call",
                {{"tenant", tenant}, {"method", method}, {"reason", std::string(st.message())}});
          }
          done(std::move(st));
        });
}

void AuditLog::Write(const Held& entry, absl::Time deadline,
                     absl::AnyInvocable<void(absl::Status)> done) {
  std::string log = keys::TenantKeys(entry.tenant, BucketOf(entry.customer_id)).audit_log();
  bool trim = false;
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    // The age trim (XADD takes only one of MAXLEN and MINID) runs once per interval per bucket.
    absl::Time now = absl::Now();
    auto [it, first] = last_age_trim_.try_emplace(log, now);
    trim = first || now - it->second >= options_.age_trim_interval;
    if (trim) it->second = now;
  }
  // Each entry holds its customer beside it for List's filter (libs/audit/lua/list.lua).
  redis_->Command(
      {"XADD", log, "MAXLEN", "~", absl::StrCat(BucketMaxEntries(options_.max_entries)), "*", "c",
       entry.customer_id, "e", entry.bytes},
      deadline,
      [this, log, trim, deadline, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        auto settle = [this](absl::Status st, absl::AnyInvocable<void(absl::Status)> done) {
          (st.ok() ? recorded_ : failures_).fetch_add(1, std::memory_order_relaxed);
          done(std::move(st));
          absl::MutexLock lock(&mu_);
          --in_flight_;
        };
        if (!r.ok() || !trim) return settle(r.status(), std::move(done));
        int64_t min_id = std::max<int64_t>(0, absl::ToUnixMillis(absl::Now() - options_.retention));
        redis_->Command({"XTRIM", log, "MINID", "~", absl::StrCat(min_id)}, deadline,
                        [log, settle, done = std::move(done)](absl::StatusOr<Reply> t) mutable {
                          // The entry is stored; a trim that failed is tried again later.
                          if (!t.ok()) {
                            Log(LogLevel::kWarning, "audit.age_trim_failed",
                                {{"log", log}, {"reason", std::string(t.status().message())}});
                          }
                          settle(absl::OkStatus(), std::move(done));
                        });
      });
}

void AuditLog::Hold(Held entry, const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  held_.push_back(std::move(entry));
  bool full = held_.size() > options_.retry_buffer;
  if (full) {
    held_.pop_front();
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  // Logged at most once a second: while Redis is away every call would log.
  int64_t now_s = absl::ToUnixSeconds(absl::Now());
  if (now_s != last_warning_s_) {
    last_warning_s_ = now_s;
    Log(full ? LogLevel::kError : LogLevel::kWarning,
        full ? "audit.buffer_full_entry_dropped" : "audit.record_deferred",
        {{"held", absl::StrCat(held_.size())},
         {"dropped_total", absl::StrCat(dropped_.load())},
         {"reason", std::string(why.message())}});
  }
}

void AuditLog::RetryHeld() {
  std::deque<Held> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(held_);
  }
  for (Held& h : batch) {
    auto held = std::make_shared<Held>(std::move(h));
    Write(*held, absl::Now() + kWriteTimeout, [this, held](absl::Status st) {
      if (!st.ok()) Hold(std::move(*held), st);
    });
  }
}

void AuditLog::RetryLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.retry_interval)) {
    bool any;
    {
      absl::MutexLock lock(&mu_);
      any = !held_.empty();
    }
    if (any) RetryHeld();
  }
}

size_t AuditLog::pending() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

void AuditLog::List(const v1::ListAuditEntriesRequest& req, absl::Time deadline,
                    Callback<v1::ListAuditEntriesResponse> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  if (!req.customer_id().empty()) {
    if (absl::Status st = ValidateCustomerId("customer_id", req.customer_id()); !st.ok()) {
      return done(st);
    }
  }
  if (req.page_size() < 0 || req.page_size() > kMaxPageSize) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("page_size: must be between 0 and ", kMaxPageSize)));
  }
  std::string owner = TokenOwner(req.tenant(), req.customer_id());
  timeline::BucketPositions from;
  if (!req.page_token().empty()) {
    absl::StatusOr<timeline::BucketPositions> p =
        timeline::DecodeBucketCursor("page_token", req.page_token(), owner);
    if (!p.ok()) return done(p.status());
    from = *std::move(p);
  }
  const int size = req.page_size() == 0 ? kDefaultPageSize : req.page_size();
  // One customer's entries are all in its bucket; the others are not read.
  std::vector<int> buckets;
  if (!req.customer_id().empty()) {
    buckets.push_back(keys::TenantBucket(req.customer_id()));
  } else {
    for (int b = 0; b < keys::kTenantBuckets; ++b) buckets.push_back(b);
  }
  auto replies = std::make_shared<std::vector<Reply>>(keys::kTenantBuckets);
  auto joined = Barrier::Make(buckets.size(), [replies, owner, from, size,
                                               done = std::move(done)](absl::Status st) mutable {
    if (!st.ok()) return done(st);
    std::vector<timeline::BucketRead> reads(replies->size());
    for (size_t b = 0; b < replies->size(); ++b) {
      const Reply& r = (*replies)[b];
      if (r.is_nil()) continue;  // not read
      if (!r.is_array() || r.elements.size() != 3 || !r.elements[2].is_array()) {
        return done(absl::InternalError("unexpected reply from audit_list"));
      }
      for (const Reply& e : r.elements[2].elements) {
        if (!e.is_array() || e.elements.size() != 2) {
          return done(absl::InternalError("unexpected reply from audit_list"));
        }
        reads[b].ids.push_back(e.elements[0].str);
      }
      reads[b].more = r.elements[0].integer == 1;
      reads[b].last = r.elements[1].str;
    }
    timeline::MergedPage page = timeline::MergeNewestFirst(reads, from, static_cast<size_t>(size));
    v1::ListAuditEntriesResponse resp;
    for (const auto& [b, i] : page.picked) {
      if (!resp.add_entries()->ParseFromString(
              (*replies)[b].elements[2].elements[i].elements[1].str)) {
        return done(absl::DataLossError("an audit entry does not parse"));
      }
    }
    if (page.more) resp.set_next_page_token(timeline::EncodeBucketCursor(owner, page.next));
    done(std::move(resp));
  });
  for (int b : buckets) {
    lua::AuditList call;
    call.log = keys::TenantKeys(req.tenant(), b).audit_log();
    call.start = from[b].empty() ? std::string("+") : absl::StrCat("(", from[b]);
    call.page_size = size;
    call.customer_id = req.customer_id();
    redis_->Fcall(call, deadline, [replies, joined, b](absl::StatusOr<Reply> r) {
      if (r.ok()) (*replies)[b] = *std::move(r);
      joined->Arrive(r.status());
    });
  }
}

}  // namespace onestory::audit
