#include "services/common/aof_rewrite.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"

namespace onestory::service {
namespace {

// After Redis refused a rewrite (one is running, or Redis is away), when to ask again.
constexpr absl::Duration kRetryAfter = absl::Seconds(1);

}  // namespace

AofRewriteScheduler::AofRewriteScheduler(redis::Client* redis, absl::Duration min_interval)
    : redis_(redis), min_interval_(min_interval) {
  thread_ = std::thread([this] { Loop(); });
}

AofRewriteScheduler::~AofRewriteScheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void AofRewriteScheduler::Request() {
  absl::MutexLock lock(&mu_);
  pending_ = true;
}

uint64_t AofRewriteScheduler::started() const {
  absl::MutexLock lock(&mu_);
  return started_;
}

void AofRewriteScheduler::Loop() {
  absl::Time not_before = absl::InfinitePast();  // after a refusal: kRetryAfter
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto wake = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || pending_; };
      mu_.Await(absl::Condition(&wake));
      // Due at the end of the interval (or of the retry delay); a stop ends the wait.
      absl::Time due = std::max(last_start_ + min_interval_, not_before);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
      if (due > absl::Now()) mu_.AwaitWithDeadline(absl::Condition(&stopping), due);
      if (stop_) return;
      // Requests from here on need a rewrite that starts after them: the one sent now may not.
      pending_ = false;
    }
    absl::Notification answered;
    absl::Status result;
    redis_->Command({"BGREWRITEAOF"}, absl::Now() + absl::Seconds(5),
                    [&](absl::StatusOr<redis::Reply> r) {
                      result = r.status();
                      answered.Notify();
                    });
    answered.WaitForNotification();
    absl::MutexLock lock(&mu_);
    if (result.ok()) {
      last_start_ = absl::Now();
      not_before = absl::InfinitePast();
      ++started_;
      Log(LogLevel::kInfo, "aof.rewrite_started", {{"rewrites", absl::StrCat(started_)}});
    } else {
      // One already running may have copied the data before the erase: another must follow.
      pending_ = true;
      not_before = absl::Now() + kRetryAfter;
      Log(LogLevel::kInfo, "aof.rewrite_deferred", {{"reason", std::string(result.message())}});
    }
  }
}

}  // namespace onestory::service
