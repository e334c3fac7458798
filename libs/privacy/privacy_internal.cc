// Helpers PrivacyStore's erase, export and redaction share (privacy_internal.h).
#include "libs/privacy/privacy_internal.h"

#include <deque>
#include <set>
#include <utility>

#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/privacy_store.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::privacy::internal {

using redis::Reply;

bool Transient(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable ||
         st.code() == absl::StatusCode::kDeadlineExceeded;
}

// The customers merged into `root`, recursively, in the order found: each MERGED merge record
// in a customer's history whose target it is.
void FindMergedSources(redis::Client* client, const std::string& tenant, const std::string& root,
                       absl::Time deadline, Callback<std::vector<MergedSource>> done) {
  struct State {
    redis::Client* client;
    std::string tenant;
    absl::Time deadline;
    std::deque<std::string> queue;
    std::set<std::string> seen;
    std::vector<MergedSource> found;
    Callback<std::vector<MergedSource>> done;
  };
  auto state = std::make_shared<State>();
  state->client = client;
  state->tenant = tenant;
  state->deadline = deadline;
  state->queue.push_back(root);
  state->seen.insert(root);
  state->done = std::move(done);
  struct Walk {
    static void Next(std::shared_ptr<State> s) {
      if (s->queue.empty()) return s->done(std::move(s->found));
      std::string c = s->queue.front();
      s->queue.pop_front();
      s->client->Command(
          {"ZRANGE", keys::CustomerKeys(s->tenant, c).merge_history(), "0", "-1"}, s->deadline,
          [s, c](absl::StatusOr<Reply> ids) {
            if (!ids.ok()) return s->done(ids.status());
            auto records = std::make_shared<std::vector<v1::MergeRecord>>(ids->elements.size());
            auto b = Barrier::Make(ids->elements.size(), [s, c, records](absl::Status st) {
              if (!st.ok()) return s->done(st);
              for (const v1::MergeRecord& r : *records) {
                if (r.target_customer_id() != c || r.state() != v1::MergeRecord::STATE_MERGED ||
                    !s->seen.insert(r.source_customer_id()).second) {
                  continue;
                }
                s->found.push_back(
                    MergedSource{r.source_customer_id(), r.merge_id(), c, ToMillis(r.merged_at())});
                s->queue.push_back(r.source_customer_id());
              }
              Next(s);
            });
            for (size_t i = 0; i < ids->elements.size(); ++i) {
              s->client->Command({"HGET", keys::MergeKey(s->tenant, ids->elements[i].str), "rec"},
                                 s->deadline, [b, records, i](absl::StatusOr<Reply> r) {
                                   if (r.ok() && r->is_string())
                                     (*records)[i].ParseFromString(r->str);
                                   b->Arrive(r.status());
                                 });
            }
          });
    }
  };
  Walk::Next(std::move(state));
}

absl::Status ValidateReason(absl::string_view reason) {
  return ValidateText("reason", reason, kMaxReasonBytes, /*allow_newlines=*/false);
}

}  // namespace onestory::privacy::internal
