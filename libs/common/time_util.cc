#include "libs/common/time_util.h"

#include "absl/time/clock.h"

namespace onestory {

int64_t NowMillis() { return absl::ToUnixMillis(absl::Now()); }

int64_t ToMillis(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1000 + ts.nanos() / 1000000;
}

google::protobuf::Timestamp FromMillis(int64_t ms) {
  google::protobuf::Timestamp ts;
  int64_t seconds = ms / 1000;
  int64_t rest = ms % 1000;
  if (rest < 0) {
    rest += 1000;
    seconds -= 1;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000000));
  return ts;
}

}  // namespace onestory
