// Helpers PrivacyStore's erase, export and redaction share (not part of the library's API).
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"

namespace onestory::privacy::internal {

// UNAVAILABLE or DEADLINE_EXCEEDED: Redis did not answer; a retry may.
bool Transient(const absl::Status& st);

// EraseCustomerRequest.reason and RedactEventRequest.reason: INVALID_ARGUMENT naming "reason".
absl::Status ValidateReason(absl::string_view reason);

// Runs `count` asynchronous operations and calls done with the first error or OK.
class Barrier {
 public:
  static std::shared_ptr<Barrier> Make(size_t count, absl::AnyInvocable<void(absl::Status)> done) {
    auto b = std::shared_ptr<Barrier>(new Barrier(count, std::move(done)));
    if (count == 0) b->done_(absl::OkStatus());
    return b;
  }
  void Arrive(const absl::Status& st) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      if (!st.ok() && status_.ok()) status_ = st;
      last = --left_ == 0;
    }
    if (last) done_(status_);
  }

 private:
  Barrier(size_t count, absl::AnyInvocable<void(absl::Status)> done)
      : left_(count), done_(std::move(done)) {}
  absl::Mutex mu_;
  size_t left_;
  absl::Status status_;
  absl::AnyInvocable<void(absl::Status)> done_;
};

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
