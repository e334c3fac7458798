// The failpoint check and the recovery pass over a pending hash (steps.h).
#include "libs/steps/steps.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"

namespace onestory::steps {

absl::Status CheckFailpoint(const Failpoint& failpoint, absl::string_view step) {
  if (!failpoint || !failpoint(std::string(step))) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("failpoint ", step));
}

void RecoverPendingHash(redis::Client* client, const std::string& key, const std::string& name,
                        absl::Duration older_than,
                        absl::AnyInvocable<int64_t(absl::string_view value)> updated_ms,
                        absl::Time deadline,
                        absl::AnyInvocable<void(const PendingRun&, Report)> resume,
                        Callback<int> done) {
  client->Command(
      {"HGETALL", key}, deadline,
      [name, older_than, updated_ms = std::move(updated_ms), resume = std::move(resume),
       done = std::move(done)](absl::StatusOr<redis::Reply> all) mutable {
        if (!all.ok()) return done(all.status());
        std::vector<PendingRun> due;
        int64_t now = NowMillis();
        const auto& e = all->elements;
        for (size_t i = 0; i + 1 < e.size(); i += 2) {
          if (now - updated_ms(e[i + 1].str) < absl::ToInt64Milliseconds(older_than)) continue;
          std::pair<std::string, std::string> parts = absl::StrSplit(e[i].str, '/');
          if (ValidateTenant(parts.first).ok() && ValidateCustomerId("", parts.second).ok()) {
            due.push_back({parts.first, parts.second, e[i + 1].str});
          }
        }
        ResumeAll<PendingRun>(
            due,
            [name, resume = std::move(resume)](const PendingRun& d, Report report) mutable {
              Log(LogLevel::kInfo, absl::StrCat(name, ".recovering"),
                  {{"tenant", d.tenant}, {"customer", d.customer}});
              resume(d, std::move(report));
            },
            std::move(done));
      });
}

}  // namespace onestory::steps
