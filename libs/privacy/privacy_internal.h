// Helpers PrivacyStore's erase, export and redaction share (not part of the library's API).
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/barrier.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"

namespace onestory::privacy::internal {

// UNAVAILABLE or DEADLINE_EXCEEDED: Redis did not answer; a retry may.
bool Transient(const absl::Status& st);

// EraseCustomerRequest.reason and RedactEventRequest.reason: INVALID_ARGUMENT naming "reason".
absl::Status ValidateReason(absl::string_view reason);

// A customer merged into another (directly or through others).
struct MergedSource {
  std::string customer_id;
  std::string merge_id;
  std::string into;
  int64_t merged_at_ms = 0;
};

// The customers merged into `root`, recursively, in the order found: each MERGED merge record
// in a customer's history whose target it is.
void FindMergedSources(redis::Client* client, const std::string& tenant, const std::string& root,
                       absl::Time deadline, Callback<std::vector<MergedSource>> done);

}  // namespace onestory::privacy::internal
