// Conversions between google.protobuf.Timestamp and milliseconds since the Unix epoch, the
// unit OneStory stores. Thread-safe (pure).
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"

namespace onestory {

int64_t NowMillis();
// Undefined for a timestamp ValidateTimestamp refuses (its milliseconds may not fit).
int64_t ToMillis(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp FromMillis(int64_t ms);
// FromMillis's seconds and nanos, without a Timestamp (for writers that serialize it by hand).
struct SecondsNanos {
  int64_t seconds;
  int32_t nanos;
};
SecondsNanos SplitMillis(int64_t ms);

// OK for a valid google.protobuf.Timestamp between 1970-01-01 and 9999-12-31T23:59:59Z (nanos
// 0-999,999,999); otherwise INVALID_ARGUMENT "<field>: not a valid time between 1970 and 9999".
// Every timestamp a request carries is checked this way, whether it is stored or a filter.
absl::Status ValidateTimestamp(absl::string_view field, const google::protobuf::Timestamp& ts);

}  // namespace onestory
