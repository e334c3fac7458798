// Request validation of TimelineService.Append: the input is a serialized v1::AppendRequest.
//
// Runs the checks TimelineStore::Append runs before it touches Redis (tenant, customer,
// PrepareEvents) and never crashes. What they accept must be what the API promises to store:
// ids without key separators, 1-500 events with known channel, kind and actor, unique event
// ids, text without control characters, output-only fields cleared; and preparing the prepared
// events again changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/timeline/event_validation.h"
#include "onestory/v1/timeline.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/request_checks.h"

namespace onestory::timeline {
namespace {

using google::protobuf::util::MessageDifferencer;

void CheckPreparedEvent(const v1::Event& in, const v1::Event& out) {
  FUZZ_CHECK(ValidateToken("event_id", out.event_id(), kMaxEventIdBytes, false).ok());
  if (!in.event_id().empty()) FUZZ_CHECK(out.event_id() == in.event_id());
  FUZZ_CHECK(out.channel() != v1::CHANNEL_UNSPECIFIED && v1::Channel_IsValid(out.channel()));
  FUZZ_CHECK(out.kind() != v1::EVENT_KIND_UNSPECIFIED && v1::EventKind_IsValid(out.kind()));
  FUZZ_CHECK(out.actor().type() != v1::Actor::TYPE_UNSPECIFIED &&
             v1::Actor::Type_IsValid(out.actor().type()));
  FUZZ_CHECK(out.has_occurred_at());
  FUZZ_CHECK(ToMillis(out.occurred_at()) <= fuzz::kNowMs + kMaxFutureSkewMs);
  if (!in.has_occurred_at()) FUZZ_CHECK(ToMillis(out.occurred_at()) == fuzz::kNowMs);
  FUZZ_CHECK(ValidateText("summary", out.summary(), kMaxSummaryBytes).ok());
  FUZZ_CHECK(ValidateText("body", out.body(), kMaxBodyBytes).ok());
  FUZZ_CHECK(out.summary() == in.summary() && out.body() == in.body());
  FUZZ_CHECK(out.attributes_size() <= kMaxEventAttributes);
  for (const auto& [k, v] : out.attributes()) {
    FUZZ_CHECK(!k.empty() && ValidateText("key", k, kMaxAttributeKeyBytes, false).ok());
    FUZZ_CHECK(ValidateText("value", v, kMaxAttributeValueBytes).ok());
  }
  if (out.kind() == v1::EVENT_KIND_CONVERSATION_ENDED) FUZZ_CHECK(!out.conversation_id().empty());
  FUZZ_CHECK(out.customer_id().empty() && out.cursor().empty() && !out.has_appended_at());
}

void CheckEvents(const google::protobuf::RepeatedPtrField<v1::Event>& events) {
  auto prepared = PrepareEvents(events, fuzz::kNowMs);
  if (!prepared.ok()) {
    fuzz::CheckRefusal(prepared.status(), "events");
    return;
  }
  FUZZ_CHECK(!prepared->empty() && prepared->size() <= kMaxEventsPerAppend);
  FUZZ_CHECK(prepared->size() == static_cast<size_t>(events.size()));
  absl::flat_hash_set<std::string> ids;
  for (size_t i = 0; i < prepared->size(); ++i) {
    CheckPreparedEvent(events[i], (*prepared)[i]);
    FUZZ_CHECK(ids.insert((*prepared)[i].event_id()).second);
  }
  google::protobuf::RepeatedPtrField<v1::Event> again(prepared->begin(), prepared->end());
  auto twice = PrepareEvents(again, fuzz::kNowMs);
  FUZZ_CHECK(twice.ok() && twice->size() == prepared->size());
  for (size_t i = 0; i < prepared->size(); ++i) {
    FUZZ_CHECK(MessageDifferencer::Equals((*twice)[i], (*prepared)[i]));
  }
}

}  // namespace
}  // namespace onestory::timeline

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Proto3 parsing logs every string that is not UTF-8; the refusal is all this target needs.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onestory::v1::AppendRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  onestory::fuzz::CheckTenantAndCustomer(request.tenant(), request.customer());
  onestory::timeline::CheckEvents(request.events());
  return 0;
}
