#include "libs/outbox/sweeper.h"

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/outbox/outbox.h"

namespace onestory::outbox {

Sweeper::Stats Sweeper::RunOnce(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  Stats stats;
  absl::flat_hash_map<std::string, int64_t> now_seen;
  std::vector<std::pair<std::string, int64_t>> due;    // unchanged since the previous pass
  std::vector<std::pair<int, std::string>> malformed;  // (bucket, member): removed
  for (int b = 0; b < keys::kOutboxBuckets; ++b) {
    absl::StatusOr<redis::Reply> r =
        client_->CommandSync({"ZRANGE", keys::PendingOutboxKey(b), "0",
                              absl::StrCat(options_.per_bucket - 1), "WITHSCORES"},
                             std::max(absl::Seconds(1), deadline - absl::Now()));
    if (!r.ok() || !r->is_array()) {
      ++stats.errors;
      Log(LogLevel::kWarning, "outbox.sweep_read_failed",
          {{"bucket", absl::StrCat(b)},
           {"error", r.ok() ? "not an array" : r.status().ToString()}});
      continue;
    }
    for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
      int64_t mark = 0;
      if (!absl::SimpleAtoi(r->elements[i + 1].str, &mark)) continue;
      const std::string& member = r->elements[i].str;
      std::vector<std::string> parts = absl::StrSplit(member, absl::MaxSplits('|', 1));
      if (parts.size() != 2 || !ValidateTenant(parts[0]).ok() ||
          !ValidateCustomerId("customer", parts[1]).ok()) {
        malformed.emplace_back(b, member);
        continue;
      }
      ++stats.marked;
      now_seen[member] = mark;
      auto it = seen_.find(member);
      if (it != seen_.end() && it->second == mark) due.emplace_back(member, mark);
    }
  }
  // A drained mark is forgotten: one written again later starts over at the same score, and
  // must stand still for a pass of its own.
  for (const auto& [member, mark] : due) now_seen.erase(member);
  seen_ = std::move(now_seen);

  for (const auto& [b, member] : malformed) {
    Log(LogLevel::kWarning, "outbox.malformed_mark", {{"member", member}});
    absl::StatusOr<redis::Reply> r =
        client_->CommandSync({"ZREM", keys::PendingOutboxKey(b), member});
    if (!r.ok()) ++stats.errors;  // left for the next pass
  }

  absl::Mutex results_mu;
  for (size_t start = 0; start < due.size(); start += options_.in_flight) {
    const size_t end = std::min(due.size(), start + options_.in_flight);
    absl::BlockingCounter left(static_cast<int>(end - start));
    for (size_t i = start; i < end; ++i) {
      const auto& [member, mark] = due[i];
      std::vector<std::string> parts = absl::StrSplit(member, absl::MaxSplits('|', 1));
      Drain(client_, parts[0], parts[1], mark, deadline,
            [&, member = member](absl::StatusOr<int64_t> n) {
              {
                absl::MutexLock l(&results_mu);
                if (n.ok()) {
                  ++stats.drained;
                  stats.entries += *n;
                } else {
                  ++stats.errors;
                }
              }
              if (!n.ok()) {
                Log(LogLevel::kWarning, "outbox.sweep_drain_failed",
                    {{"outbox", member}, {"error", n.status().ToString()}});
              }
              left.DecrementCount();
            });
    }
    left.Wait();
  }
  return stats;
}

}  // namespace onestory::outbox
