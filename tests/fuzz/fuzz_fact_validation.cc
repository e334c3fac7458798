// Request validation of ConversationService.RecordFacts: the input is a serialized
// v1::RecordFactsRequest.
//
// Runs the public checks of libs/engagement/records.h that the conversation store runs before
// it touches Redis (tenant, customer, actor, channel, each fact) and never crashes. A fact they
// accept has a known type, a name of [a-z0-9_.-], text without control characters, the times
// its type needs in the future, and no due time unless it is a promise.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/timeline/event_validation.h"
#include "onestory/v1/conversation.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/request_checks.h"

namespace onestory::engagement {
namespace {

bool IsStageChar(char c) {
  return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-';
}

void CheckFact(const std::string& field, const v1::Fact& f) {
  absl::Status st = ValidateFact(field, f, fuzz::kNowMs);
  if (!st.ok()) {
    fuzz::CheckRefusal(st, field);
    return;
  }
  FUZZ_CHECK(f.type() != v1::FACT_TYPE_UNSPECIFIED && v1::FactType_IsValid(f.type()));
  FUZZ_CHECK(!f.name().empty() && f.name().size() <= 64);
  for (char c : f.name()) FUZZ_CHECK(IsStageChar(c) || c == '.');
  FUZZ_CHECK(ValidateText("value", f.value(), kMaxFactValueBytes).ok());
  if (f.type() == v1::FACT_TYPE_VERIFICATION) FUZZ_CHECK(f.has_expires_at());
  if (f.has_expires_at()) FUZZ_CHECK(ToMillis(f.expires_at()) > fuzz::kNowMs);
  FUZZ_CHECK(f.has_due_at() == (f.type() == v1::FACT_TYPE_PROMISE));
  if (f.has_due_at()) FUZZ_CHECK(ToMillis(f.due_at()) > fuzz::kNowMs);
  FUZZ_CHECK(ValidateToken("case_id", f.case_id(), timeline::kMaxRefIdBytes, true).ok());
  FUZZ_CHECK(v1::Audience_IsValid(f.visibility()));

  // The stage rule is the fact-name rule without '.'.
  absl::Status stage = ValidateStage("stage", f.name());
  FUZZ_CHECK(stage.ok() == (f.name().find('.') == std::string::npos));
}

void CheckRequest(const v1::RecordFactsRequest& request) {
  fuzz::CheckTenantAndCustomer(request.tenant(), request.customer());
  absl::Status actor = ValidateActor("actor", request.actor(), true);
  if (actor.ok()) {
    const v1::Actor& a = request.actor();
    FUZZ_CHECK(a.type() != v1::Actor::TYPE_UNSPECIFIED && v1::Actor::Type_IsValid(a.type()));
    bool id_required = a.type() == v1::Actor::TYPE_AGENT || a.type() == v1::Actor::TYPE_BOT;
    FUZZ_CHECK(ValidateToken("id", a.id(), timeline::kMaxRefIdBytes, !id_required).ok());
  } else {
    fuzz::CheckRefusal(actor, "actor");
  }
  // Optional, the actor may be left out entirely; required, it may not.
  if (!ValidateActor("actor", request.actor(), false).ok()) FUZZ_CHECK(!actor.ok());
  absl::Status channel = ValidateChannel("channel", request.channel(), true);
  FUZZ_CHECK(channel.ok() == (request.channel() != v1::CHANNEL_UNSPECIFIED &&
                              v1::Channel_IsValid(request.channel())));
  for (int i = 0; i < request.facts_size(); ++i) {
    CheckFact(absl::StrCat("facts[", i, "]"), request.facts(i));
  }
}

}  // namespace
}  // namespace onestory::engagement

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Proto3 parsing logs every string that is not UTF-8; the refusal is all this target needs.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  onestory::v1::RecordFactsRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  onestory::engagement::CheckRequest(request);
  return 0;
}
