// RecoverPending: finishes the merges and unmerges a crash interrupted.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"
#include "libs/merge/merge_engine.h"
#include "libs/merge/merge_record.h"
#include "libs/merge/merge_run.h"

namespace onestory::merge {

using redis::Reply;

void MergeEngine::RecoverPending(bool all, absl::Time deadline, Callback<int> done) {
  client_->Command(
      {"SMEMBERS", keys::PendingMergesKey()}, deadline,
      [this, all, deadline, done = std::move(done)](absl::StatusOr<Reply> members) mutable {
        if (!members.ok()) return done(members.status());
        auto finished = std::make_shared<std::atomic<int>>(0);
        auto shared_done = std::make_shared<Callback<int>>(std::move(done));
        auto b = Barrier::Make(members->elements.size(), [finished, shared_done](absl::Status st) {
          if (!st.ok()) return (*shared_done)(st);
          (*shared_done)(finished->load());
        });
        int64_t now = NowMillis();
        for (const Reply& m : members->elements) {
          std::string tenant, merge_id;
          if (!ParsePendingMember(m.str, &tenant, &merge_id)) tenant = m.str;
          client_->Command(
              {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "updated_at"}, deadline,
              [this, all, now, tenant, merge_id, deadline, b, finished,
               member = m.str](absl::StatusOr<Reply> r) {
                if (!r.ok()) return b->Arrive(r.status());
                if (r->elements.size() != 2 || r->elements[0].is_nil()) {
                  // A record refused before it held anything, or already forgotten.
                  client_->Command({"SREM", keys::PendingMergesKey(), member}, deadline,
                                   [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
                  return;
                }
                int64_t updated = 0;
                absl::SimpleAtoi(r->elements[1].str, &updated);
                if (!all && now - updated < absl::ToInt64Milliseconds(kRecoveryAfter)) {
                  return b->Arrive(absl::OkStatus());  // probably still running somewhere
                }
                Log(LogLevel::kInfo, "merge.recovering",
                    {{"tenant", tenant}, {"merge_id", merge_id}});
                Resume(tenant, merge_id, deadline,
                       [b, finished, merge_id](absl::StatusOr<v1::MergeRecord> rec) {
                         if (rec.ok()) {
                           ++*finished;
                         } else if (rec.status().code() == absl::StatusCode::kUnavailable ||
                                    rec.status().code() == absl::StatusCode::kDeadlineExceeded) {
                           Log(LogLevel::kWarning, "merge.recovery_failed",
                               {{"merge_id", merge_id}, {"error", rec.status().ToString()}});
                         } else {
                           // Refused at its lock step (merge.refused says why): dropped.
                           Log(LogLevel::kInfo, "merge.recovery_dropped",
                               {{"merge_id", merge_id}, {"reason", rec.status().ToString()}});
                         }
                         b->Arrive(absl::OkStatus());
                       });
              });
        }
      });
}

}  // namespace onestory::merge
