// Helpers to build the timeline events engagement operations write, and to return them as
// stored (with customer_id, cursor and appended_at). Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/common/time_util.h"
#include "libs/timeline/event_validation.h"
#include "onestory/v1/common.pb.h"

namespace onestory::engagement {

// "agent:alice", "bot:helpbot", "customer", "system".
std::string ActorName(const v1::Actor& actor);

// The event as stored at stream id `sid`: `built` (the event this call wrote) or, when null, the
// serialized `blob` read back (a retry's answer).
absl::StatusOr<v1::Event> StoredEvent(const std::string& customer_id, const std::string& sid,
                                      const std::string& blob, const v1::Event* built);

// request.occurred_at checked like Event.occurred_at (not before 1970, at most an hour ahead),
// or now when unset.
template <typename Request>
absl::StatusOr<google::protobuf::Timestamp> OccurredAt(absl::string_view field, const Request& req,
                                                       int64_t now_ms) {
  if (!req.has_occurred_at()) return FromMillis(now_ms);
  const auto& ts = req.occurred_at();
  if (ts.nanos() < 0 || ts.nanos() > 999999999 || ts.seconds() < 0 || ts.seconds() > 253402300799) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": not a valid time between 1970 and 9999"));
  }
  if (ToMillis(ts) > now_ms + timeline::kMaxFutureSkewMs) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": more than one hour in the future"));
  }
  return ts;
}

}  // namespace onestory::engagement
