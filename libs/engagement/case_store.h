// CaseStore: cases (the customer's open issue across conversations and channels), their owners
// and promises, and the tenant's journey with its statistics (CaseService).
//
//   CaseStore cases({&redis_client, &identity_store, policy});
//   cases.Open(request, deadline, [](absl::StatusOr<v1::OpenCaseResponse> r) { ... });
//
// Each change is one function of the Redis Function library (libs/engagement/lua/case_*.lua)
// over the customer's keys and the tenant's journey keys: it checks the request against the
// stored case and journey, appends the change's event through the shared event effects, and
// changes the case, the tenant's index of open cases (by stage, then the time they entered it),
// the latest completed stays per stage and the stage counters (lua/journey.lua), all or nothing. A
// promise is also indexed by its due time for the overdue-promise scan
// (AlertStore::ScanDuePromises). Retries: Open and Resolve are keyed by the case id, Update by
// request_id (event ids "co:<case>", "cr:<case>", "cu:<request>").
//
// GetJourneyStats reads every bucket of the journey (journey_stats.h: one FCALL_RO per bucket,
// in parallel) and merges them: counters and open cases summed, the exact median entry time of
// a stage's open cases, the median of the buckets' latest completed stays. SetJourney counts
// the open cases of the stages it drops in every bucket before it sets the stages.
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/engagement/customer_script.h"
#include "onestory/v1/case.pb.h"

namespace onestory::engagement {

class CaseStore {
 public:
  explicit CaseStore(StoreContext ctx) : ctx_(ctx) {}

  void Open(const v1::OpenCaseRequest& request, absl::Time deadline,
            Callback<v1::OpenCaseResponse> done);
  void Update(const v1::UpdateCaseRequest& request, absl::Time deadline,
              Callback<v1::UpdateCaseResponse> done);
  void Resolve(const v1::ResolveCaseRequest& request, absl::Time deadline,
               Callback<v1::ResolveCaseResponse> done);
  void Get(const v1::GetCaseRequest& request, absl::Time deadline, Callback<v1::Case> done);

  void SetJourney(const v1::SetJourneyRequest& request, absl::Time deadline,
                  Callback<v1::Journey> done);
  void GetJourney(const v1::GetJourneyRequest& request, absl::Time deadline,
                  Callback<v1::Journey> done);
  void GetJourneyStats(const v1::GetJourneyStatsRequest& request, absl::Time deadline,
                       Callback<v1::GetJourneyStatsResponse> done);

 private:
  StoreContext ctx_;
};

}  // namespace onestory::engagement
