// RecoverPending: finishes the merges and unmerges a crash interrupted.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"
#include "libs/merge/merge_engine.h"
#include "libs/merge/merge_record.h"
#include "libs/merge/merge_run.h"
#include "libs/steps/steps.h"

namespace onestory::merge {

using redis::Reply;

void MergeEngine::RecoverPending(bool all, absl::Time deadline, Callback<int> done) {
  client_->Command(
      {"SMEMBERS", keys::PendingMergesKey()}, deadline,
      [this, all, deadline, done = std::move(done)](absl::StatusOr<Reply> members) mutable {
        if (!members.ok()) return done(members.status());
        std::vector<std::string> pending;
        for (const Reply& m : members->elements) pending.push_back(m.str);
        int64_t now = NowMillis();
        steps::ResumeAll<std::string>(
            pending,
            [this, all, now, deadline](const std::string& member, steps::Report report) {
              std::string tenant, merge_id;
              if (!ParsePendingMember(member, &tenant, &merge_id)) tenant = member;
              client_->Command(
                  {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "updated_at"}, deadline,
                  [this, all, now, tenant, merge_id, deadline, member,
                   report = std::move(report)](absl::StatusOr<Reply> r) mutable {
                    if (!r.ok()) return report(r.status());
                    if (r->elements.size() != 2 || r->elements[0].is_nil()) {
                      // A record refused before it held anything, or already forgotten.
                      client_->Command(
                          {"SREM", keys::PendingMergesKey(), member}, deadline,
                          [report = std::move(report)](absl::StatusOr<Reply> r) mutable {
                            if (!r.ok()) return report(r.status());
                            report(false);
                          });
                      return;
                    }
                    int64_t updated = 0;
                    absl::SimpleAtoi(r->elements[1].str, &updated);
                    if (!all && now - updated < absl::ToInt64Milliseconds(kRecoveryAfter)) {
                      return report(false);  // probably still running somewhere
                    }
                    Log(LogLevel::kInfo, "merge.recovering",
                        {{"tenant", tenant}, {"merge_id", merge_id}});
                    Resume(tenant, merge_id, deadline,
                           [merge_id, report = std::move(report)](
                               absl::StatusOr<v1::MergeRecord> rec) mutable {
                             if (rec.ok()) return report(true);
                             if (rec.status().code() == absl::StatusCode::kUnavailable ||
                                 rec.status().code() == absl::StatusCode::kDeadlineExceeded) {
                               Log(LogLevel::kWarning, "merge.recovery_failed",
                                   {{"merge_id", merge_id}, {"error", rec.status().ToString()}});
                             } else {
                               // Refused at its lock step (merge.refused says why): dropped.
                               Log(LogLevel::kInfo, "merge.recovery_dropped",
                                   {{"merge_id", merge_id}, {"reason", rec.status().ToString()}});
                             }
                             report(false);
                           });
                  });
            },
            std::move(done));
      });
}

}  // namespace onestory::merge
