// Validation of appended events, and the limits that go with it.
//
//   ASSIGN_OR_RETURN(std::vector<v1::Event> events, PrepareEvents(request.events(), now_ms));
//
// PrepareEvents checks every event (INVALID_ARGUMENT naming "events[i].field" and the reason),
// fills defaults (a generated event_id, occurred_at = now) and clears output-only fields, so the
// result is exactly what is stored. Thread-safe (pure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "onestory/v1/common.pb.h"

namespace onestory::timeline {

inline constexpr int kMaxEventsPerAppend = 500;
inline constexpr size_t kMaxAppendBytes = 4 << 20;
inline constexpr size_t kMaxEventIdBytes = 128;
inline constexpr size_t kMaxRefIdBytes = 128;  // conversation_id, case_id, actor.id
inline constexpr size_t kMaxSummaryBytes = 1024;
inline constexpr size_t kMaxBodyBytes = 64 * 1024;
inline constexpr int kMaxEventAttributes = 64;
inline constexpr size_t kMaxAttributeKeyBytes = 128;
inline constexpr size_t kMaxAttributeValueBytes = 4096;
inline constexpr int64_t kMaxFutureSkewMs = 3600 * 1000;

// Whether a reader of `reader` audience may see an event or fact of `visibility` (UNSPECIFIED is
// AGENT on both sides; see Audience in proto/onestory/v1/common.proto).
bool VisibleTo(v1::Audience visibility, v1::Audience reader);
// A reader's audience from a request, UNSPECIFIED resolved to AGENT; INVALID_ARGUMENT naming
// `field` when unknown.
absl::StatusOr<v1::Audience> ReaderAudience(absl::string_view field, int audience);

absl::StatusOr<std::vector<v1::Event>> PrepareEvents(
    const google::protobuf::RepeatedPtrField<v1::Event>& events, int64_t now_ms);

}  // namespace onestory::timeline
