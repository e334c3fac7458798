// The tenant-wide reads of the journey over its buckets: GetJourneyStats and SetJourney's check
// that a dropped stage has no open cases.
//
// A tenant's journey keys are spread over keys::kTenantBuckets buckets (keys::TenantKeys(tenant,
// bucket)): a case's entry in the open-case index, its completed stays and its counters go to
// the bucket of its customer (libs/outbox). The stages are one key (keys::TenantKeys(tenant)
// .journey_stages()). Every read here is one function call per bucket, the buckets in parallel,
// each call in one slot, and the answers merged:
// - open cases, entered, repeat contacts, channel switches: the buckets' sums;
// - the median time in stage of the open cases: exact. Each bucket lists the entry times of a
//   stage when it has at most kListedPerBucket open cases in it, else its earliest and latest;
//   when some bucket did not list them, the middle entry time (or the two middle ones) is found
//   by narrowing a range of entry times, each round one engagement_journey_rank call per bucket
//   counting the cases entered at or before 63 times spread over the range (so the range shrinks
//   64-fold), until at most kFetchedAtOnce cases are inside and are read;
// - the median completed stay: the median of every bucket's ring of its latest 1,000 completed
//   stays of the stage (so over up to 16,000 stays, the latest of each bucket's customers).
//
//   ReadJourneyStats(client, "acme", deadline, [](absl::StatusOr<v1::GetJourneyStatsResponse>) {});
//
// Thread-safe; callbacks run on the Redis loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "onestory/v1/case.pb.h"

namespace onestory::engagement {

// A bucket lists a stage's entry times when it holds at most this many of its open cases.
inline constexpr int kListedPerBucket = 64;
// The narrowing reads the entry times inside its range once at most this many cases are in it.
inline constexpr int kFetchedAtOnce = 256;

// GetJourneyStats of a validated tenant: per stage of its journey (none without one), the
// figures above, now measured at NowMillis(). Errors: as the Redis calls failed.
void ReadJourneyStats(redis::Client* client, const std::string& tenant, absl::Time deadline,
                      Callback<v1::GetJourneyStatsResponse> done);

// The number of open cases of each of `stages` (validated), summed over the buckets.
void CountOpenCases(redis::Client* client, const std::string& tenant,
                    const std::vector<std::string>& stages, absl::Time deadline,
                    Callback<std::vector<int64_t>> done);

}  // namespace onestory::engagement
