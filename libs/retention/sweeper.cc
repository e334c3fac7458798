#include "libs/retention/sweeper.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/retention_forget.h"
#include "libs/lua/retention_sweep.h"

namespace onestory::retention {
namespace {

using redis::Reply;

// Answers to asynchronous calls a run waits for. Shared with the callbacks, so an answer that
// comes after the run stopped waiting is harmless.
template <typename T>
struct Answers {
  explicit Answers(size_t n) : got(n, absl::UnknownError("no answer")), left(n) {}
  absl::Mutex mu;
  std::vector<absl::StatusOr<T>> got ABSL_GUARDED_BY(mu);
  size_t left ABSL_GUARDED_BY(mu);
  int in_flight ABSL_GUARDED_BY(mu) = 0;

  Callback<T> For(std::shared_ptr<Answers> self, size_t i) {
    return [self = std::move(self), i](absl::StatusOr<T> r) {
      absl::MutexLock l(&self->mu);
      self->got[i] = std::move(r);
      --self->left;
      --self->in_flight;
    };
  }
  // Waits for every answer until `until`; false when some are missing.
  bool Wait(absl::Time until) {
    absl::MutexLock l(&mu);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return left == 0; };
    return mu.AwaitWithDeadline(absl::Condition(&all), until);
  }
};

}  // namespace

Sweeper::Sweeper(redis::Client* redis, const Policy* policy, EraseFn erase)
    : Sweeper(redis, policy, std::move(erase), Options{}) {}

Sweeper::Sweeper(redis::Client* redis, const Policy* policy, EraseFn erase, Options options)
    : redis_(redis), policy_(policy), options_(std::move(options)), erase_(std::move(erase)) {
  if (!options_.clock) options_.clock = [] { return absl::Now(); };
  options_.batch = std::max(1, options_.batch);
  options_.max_trim_per_customer = std::max(1, options_.max_trim_per_customer);
  options_.max_erases_in_flight = std::max(1, options_.max_erases_in_flight);
  options_.max_scans_per_run = std::max(1, options_.max_scans_per_run);
}

Sweeper::Stats Sweeper::RunOnce(absl::Time deadline) {
  absl::MutexLock run(&run_mu_);
  Stats stats;
  Discover(deadline, &stats);
  // Start with the tenant the last run stopped in, so a large tenant cannot starve the others.
  std::vector<std::string> order(tenants_.lower_bound(resume_), tenants_.end());
  order.insert(order.end(), tenants_.begin(), tenants_.lower_bound(resume_));
  stats.finished = true;
  for (const std::string& tenant : order) {
    if (absl::Now() >= deadline) {
      stats.finished = false;
      resume_ = tenant;
      break;
    }
    ++stats.tenants;
    if (!SweepTenant(tenant, deadline, &stats)) {
      stats.finished = false;
      resume_ = tenant;
      break;
    }
  }
  if (stats.finished) resume_.clear();
  return stats;
}

void Sweeper::Discover(absl::Time deadline, Stats* stats) {
  for (int calls = 0; calls < options_.max_scans_per_run; ++calls) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    absl::StatusOr<Reply> r = redis_->CommandSync({"SSCAN", keys::TenantRegistryKey(), scan_cursor_,
                                                   "COUNT", absl::StrCat(options_.scan_count)},
                                                  std::min(left, absl::Seconds(5)));
    if (!r.ok() || !r->is_array() || r->elements.size() != 2 || !r->elements[1].is_array()) {
      ++stats->errors;
      Log(LogLevel::kWarning, "retention.scan_failed",
          {{"error", r.ok() ? std::string("unexpected reply") : r.status().ToString()}});
      return;
    }
    scan_cursor_ = r->elements[0].str;
    for (const Reply& tenant : r->elements[1].elements) {
      if (!ValidateTenant(tenant.str).ok()) continue;
      found_.emplace(tenant.str);
      tenants_.emplace(tenant.str);
    }
    if (scan_cursor_ == "0") {
      // A whole round: tenants no longer registered are forgotten.
      tenants_ = std::move(found_);
      found_.clear();
      for (auto it = cursors_.begin(); it != cursors_.end();) {
        it = tenants_.contains(it->first) ? std::next(it) : cursors_.erase(it);
      }
      return;
    }
  }
}

bool Sweeper::SweepTenant(const std::string& tenant, absl::Time deadline, Stats* stats) {
  const Limits limits = policy_->For(tenant);
  const int64_t now = absl::ToUnixMillis(options_.clock());
  const bool expire = limits.inactive_after > absl::ZeroDuration();
  const bool trim = limits.max_age > absl::ZeroDuration();
  if (!expire && !trim) {
    cursors_.erase(tenant);
    return true;
  }
  Cursor& cursor = cursors_[tenant];
  Step step;
  step.tenant = tenant;
  step.index = keys::TenantKeys(tenant, cursor.bucket).activity();
  step.now = now;
  // Expired: latest activity before expire_before. Trimmed: the others up to `upper`.
  step.expire_before = expire ? now - absl::ToInt64Milliseconds(limits.inactive_after) : INT64_MIN;
  const int64_t upper =
      std::max(expire ? step.expire_before - 1 : INT64_MIN,
               trim ? now - absl::ToInt64Milliseconds(options_.skip_recent) : INT64_MIN);
  step.max_age_ms = absl::ToInt64Milliseconds(limits.max_age);
  step.max_events = limits.max_events;
  const std::string batch = absl::StrCat(options_.batch);
  // A bucket's walk is over: the next bucket's starts, or the tenant's pass is done.
  auto next_bucket = [&]() {
    if (cursor.bucket + 1 >= keys::kTenantBuckets) return false;
    cursor = Cursor{.bucket = cursor.bucket + 1};
    step.index = keys::TenantKeys(tenant, cursor.bucket).activity();
    return true;
  };
  while (true) {
    if (absl::Now() >= deadline) return false;
    // A step started before the deadline may finish after it (by one step's time).
    step.deadline = std::max(deadline, absl::Now() + absl::Seconds(10));
    const bool in_tie = cursor.tie_offset >= 0;
    std::vector<std::string> range =
        in_tie ? std::vector<std::string>{"ZRANGE",
                                          step.index,
                                          absl::StrCat(cursor.tie_score),
                                          absl::StrCat(cursor.tie_score),
                                          "BYSCORE",
                                          "LIMIT",
                                          absl::StrCat(cursor.tie_offset),
                                          batch,
                                          "WITHSCORES"}
               : std::vector<std::string>{
                     "ZRANGE", step.index, cursor.start, absl::StrCat(upper), "BYSCORE",
                     "LIMIT",  "0",        batch,        "WITHSCORES"};
    absl::StatusOr<Reply> r = redis_->CommandSync(std::move(range), absl::Seconds(10));
    if (!r.ok() || !r->is_array() || r->elements.size() % 2 != 0) {
      ++stats->errors;
      Log(LogLevel::kWarning, "retention.index_read_failed",
          {{"tenant", tenant},
           {"error", r.ok() ? std::string("unexpected reply") : r.status().ToString()}});
      cursors_.erase(tenant);  // this pass ends here; the next run starts the tenant again
      return true;
    }
    std::vector<Member> members;
    for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
      double score = 0;
      if (!absl::SimpleAtod(r->elements[i + 1].str, &score)) continue;
      members.push_back(Member{r->elements[i].str, static_cast<int64_t>(score)});
    }
    const bool full = r->elements.size() / 2 >= static_cast<size_t>(options_.batch);
    if (members.empty() && in_tie) {
      cursor.tie_offset = -1;
      cursor.start = absl::StrCat("(", cursor.tie_score);
      continue;
    }
    if (members.empty()) {
      if (next_bucket()) continue;
      cursors_.erase(tenant);
      return true;
    }
    // Where the next step starts. The members of a full batch that share its last score are
    // left to the next step, so a score's members are looked at together ...
    const int64_t last = members.back().score;
    const bool all_tied = members.front().score == last;
    if (full && !in_tie && !all_tied) {
      while (members.back().score == last) members.pop_back();
      cursor.start = absl::StrCat(last);
    }
    const int64_t forgotten = RunStep(step, members, stats);
    // ... unless a whole batch has one score: its members are then walked by offset (less
    // those the step dropped from the index), and the walk goes on after that score.
    if (full && (in_tie || all_tied)) {
      cursor.tie_score = last;
      cursor.tie_offset = std::max<int64_t>(
          0, (in_tie ? cursor.tie_offset : 0) + static_cast<int64_t>(members.size()) - forgotten);
    } else if (in_tie) {
      cursor.tie_offset = -1;
      cursor.start = absl::StrCat("(", cursor.tie_score);
    } else if (!full) {
      if (next_bucket()) continue;
      cursors_.erase(tenant);
      return true;
    }
  }
}

int64_t Sweeper::RunStep(const Step& step, const std::vector<Member>& members, Stats* stats) {
  stats->customers_checked += static_cast<int64_t>(members.size());
  std::vector<std::string> forget;  // (id, score) pairs: to drop from the index
  auto forget_member = [&forget](const Member& m) {
    forget.push_back(m.id);
    forget.push_back(absl::StrCat(m.score));
  };

  // One script per customer, pipelined: trims it, or (for an expiry) only looks at it.
  std::vector<const Member*> probed;
  for (const Member& m : members) {
    if (ValidateCustomerId("customer_id", m.id).ok()) {
      probed.push_back(&m);
    } else {
      forget_member(m);
    }
  }
  auto scripts = std::make_shared<Answers<Reply>>(probed.size());
  for (size_t j = 0; j < probed.size(); ++j) {
    const Member& m = *probed[j];
    const bool expire = m.score < step.expire_before;
    keys::CustomerKeys ck(step.tenant, m.id);
    lua::RetentionSweep call;
    call.profile = ck.profile();
    call.timeline = ck.timeline();
    call.dedup = ck.dedup();
    call.now_ms = step.now;
    call.max_age = expire ? 0 : step.max_age_ms;
    call.max_events = expire ? 0 : step.max_events;
    call.limit = options_.max_trim_per_customer;
    redis_->Fcall(call, step.deadline, scripts->For(scripts, j));
  }
  scripts->Wait(absl::InfiniteFuture());  // the client answers every command, by its timeout
  std::vector<const Member*> to_erase;
  {
    absl::MutexLock l(&scripts->mu);
    int logged = 0;
    for (size_t j = 0; j < probed.size(); ++j) {
      const Member& m = *probed[j];
      const absl::StatusOr<Reply>& a = scripts->got[j];
      if (!a.ok() || !a->is_array() || a->elements.size() != 2) {
        ++stats->errors;
        if (logged++ == 0) {
          Log(LogLevel::kWarning, "retention.trim_failed",
              {{"tenant", step.tenant},
               {"customer", m.id},
               {"error", a.ok() ? std::string("unexpected reply") : a.status().ToString()}});
        }
        continue;
      }
      const int64_t state = a->elements[0].integer;
      stats->events_trimmed += a->elements[1].integer;
      if (state == 1 || state == 2) {
        forget_member(m);
      } else if (state == 0 && m.score < step.expire_before) {
        to_erase.push_back(&m);
      }
    }
  }

  // Expiries, a few at a time.
  if (!to_erase.empty()) {
    auto erased = std::make_shared<Answers<bool>>(to_erase.size());
    for (size_t j = 0; j < to_erase.size(); ++j) {
      {
        absl::MutexLock l(&erased->mu);
        auto room = [&erased, this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(erased->mu) {
          return erased->in_flight < options_.max_erases_in_flight;
        };
        erased->mu.Await(absl::Condition(&room));
        ++erased->in_flight;
      }
      erase_(step.tenant, to_erase[j]->id, erased->For(erased, j));
    }
    // An erase function that never answers must not stop the Sweeper for good.
    erased->Wait(std::max(step.deadline, absl::Now()) + absl::Minutes(1));
    absl::MutexLock l(&erased->mu);
    for (size_t j = 0; j < to_erase.size(); ++j) {
      const Member& m = *to_erase[j];
      const absl::StatusOr<bool>& a = erased->got[j];
      if (!a.ok()) {
        ++stats->errors;
        Log(LogLevel::kWarning, "retention.erase_failed",
            {{"tenant", step.tenant}, {"customer", m.id}, {"error", a.status().ToString()}});
        continue;
      }
      if (*a) ++stats->customers_expired;
      forget_member(m);
    }
  }

  if (forget.empty()) return 0;
  auto forgot = std::make_shared<Answers<Reply>>(1);
  lua::RetentionForget call;
  call.index = step.index;
  call.members = std::move(forget);
  redis_->Fcall(call, step.deadline, forgot->For(forgot, 0));
  forgot->Wait(absl::InfiniteFuture());
  absl::MutexLock l(&forgot->mu);
  if (!forgot->got[0].ok()) {
    ++stats->errors;
    Log(LogLevel::kWarning, "retention.forget_failed",
        {{"tenant", step.tenant}, {"error", forgot->got[0].status().ToString()}});
    return 0;
  }
  return forgot->got[0]->integer;
}

}  // namespace onestory::retention
