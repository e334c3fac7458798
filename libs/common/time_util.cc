#include "libs/common/time_util.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace onestory {

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

int64_t ToMillis(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1000000;
}

SecondsNanos SplitMillis(int64_t ms) {
  int64_t seconds = ms / 1000;
  int64_t rest = ms % 1000;
  if (rest < 0) {
    rest += 1000;
    seconds -= 1;
  }
  return {seconds, static_cast<int32_t>(rest * 1000000)};
}

google::protobuf::Timestamp FromMillis(int64_t ms) {
  SecondsNanos split = SplitMillis(ms);
  google::protobuf::Timestamp ts;
  ts.set_seconds(split.seconds);
  ts.set_nanos(split.nanos);
  return ts;
}

absl::Status ValidateTimestamp(absl::string_view field, const google::protobuf::Timestamp& ts) {
  // 253402300799 is 9999-12-31T23:59:59Z, the largest valid Timestamp.
  if (ts.nanos() < 0 || ts.nanos() > 999999999 || ts.seconds() < 0 || ts.seconds() > 253402300799) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": not a valid time between 1970 and 9999"));
  }
  return absl::OkStatus();
}

}  // namespace onestory
