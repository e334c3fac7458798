// Conversions between google.protobuf.Timestamp and milliseconds since the Unix epoch, the
// unit OneStory stores. Thread-safe (pure).
#pragma once

#include <cstdint>

#include "google/protobuf/timestamp.pb.h"

namespace onestory {

int64_t NowMillis();
int64_t ToMillis(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp FromMillis(int64_t ms);

}  // namespace onestory
