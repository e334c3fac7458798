#include "libs/timeline/event_validation.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"

namespace onestory::timeline {
namespace {

absl::Status Invalid(const std::string& field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status PrepareEvent(const std::string& f, v1::Event& e, int64_t now_ms) {
  RETURN_IF_ERROR(ValidateToken(f + ".event_id", e.event_id(), kMaxEventIdBytes, true));
  if (e.event_id().empty()) e.set_event_id(NewRandomId("ev_"));
  if (e.channel() == v1::CHANNEL_UNSPECIFIED || !v1::Channel_IsValid(e.channel())) {
    return Invalid(f + ".channel", "required; one of the Channel values");
  }
  if (e.kind() == v1::EVENT_KIND_UNSPECIFIED || !v1::EventKind_IsValid(e.kind())) {
    return Invalid(f + ".kind", "required; one of the EventKind values");
  }
  const v1::Actor& actor = e.actor();
  if (actor.type() == v1::Actor::TYPE_UNSPECIFIED || !v1::Actor::Type_IsValid(actor.type())) {
    return Invalid(f + ".actor.type", "required; CUSTOMER, AGENT, BOT or SYSTEM");
  }
  bool id_required = actor.type() == v1::Actor::TYPE_AGENT || actor.type() == v1::Actor::TYPE_BOT;
  RETURN_IF_ERROR(ValidateToken(f + ".actor.id", actor.id(), kMaxRefIdBytes, !id_required));
  if (e.has_occurred_at()) {
    const auto& ts = e.occurred_at();
    RETURN_IF_ERROR(ValidateTimestamp(f + ".occurred_at", ts));
    if (ToMillis(ts) > now_ms + kMaxFutureSkewMs) {
      return Invalid(f + ".occurred_at", "more than one hour in the future");
    }
  } else {
    *e.mutable_occurred_at() = FromMillis(now_ms);
  }
  RETURN_IF_ERROR(ValidateText(f + ".summary", e.summary(), kMaxSummaryBytes));
  RETURN_IF_ERROR(ValidateText(f + ".body", e.body(), kMaxBodyBytes));
  if (e.has_sentiment() &&
      !(std::isfinite(e.sentiment()) && e.sentiment() >= -1.0f && e.sentiment() <= 1.0f)) {
    return Invalid(f + ".sentiment", "must be between -1 and 1");
  }
  RETURN_IF_ERROR(ValidateToken(f + ".conversation_id", e.conversation_id(), kMaxRefIdBytes, true));
  if (e.kind() == v1::EVENT_KIND_CONVERSATION_ENDED && e.conversation_id().empty()) {
    return Invalid(f + ".conversation_id", "required for CONVERSATION_ENDED");
  }
  RETURN_IF_ERROR(ValidateToken(f + ".case_id", e.case_id(), kMaxRefIdBytes, true));
  if (!v1::Audience_IsValid(e.visibility())) {
    return Invalid(f + ".visibility", "unknown Audience value");
  }
  if (e.attributes_size() > kMaxEventAttributes) {
    return Invalid(f + ".attributes", absl::StrCat("at most ", kMaxEventAttributes, " entries"));
  }
  for (const auto& [k, v] : e.attributes()) {
    if (k.empty()) return Invalid(f + ".attributes", "empty key");
    RETURN_IF_ERROR(ValidateText(f + ".attributes key", k, kMaxAttributeKeyBytes, false));
    RETURN_IF_ERROR(
        ValidateText(absl::StrCat(f, ".attributes[", k, "]"), v, kMaxAttributeValueBytes));
  }
  e.clear_customer_id();
  e.clear_cursor();
  e.clear_appended_at();
  e.clear_redacted_at();
  return absl::OkStatus();
}

}  // namespace

bool VisibleTo(v1::Audience visibility, v1::Audience reader) {
  if (visibility == v1::AUDIENCE_UNSPECIFIED) visibility = v1::AUDIENCE_AGENT;
  if (reader == v1::AUDIENCE_UNSPECIFIED) reader = v1::AUDIENCE_AGENT;
  return visibility <= reader;
}

absl::StatusOr<v1::Audience> ReaderAudience(absl::string_view field, int audience) {
  if (!v1::Audience_IsValid(audience))
    return absl::InvalidArgumentError(absl::StrCat(field, ": unknown Audience value"));
  if (audience == v1::AUDIENCE_UNSPECIFIED) return v1::AUDIENCE_AGENT;
  return static_cast<v1::Audience>(audience);
}

absl::StatusOr<std::vector<v1::Event>> PrepareEvents(
    const google::protobuf::RepeatedPtrField<v1::Event>& events, int64_t now_ms) {
  if (events.empty()) return absl::InvalidArgumentError("events: at least one event is required");
  if (events.size() > kMaxEventsPerAppend) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: at most ", kMaxEventsPerAppend, " events per request"));
  }
  size_t total = 0;
  for (const auto& e : events) total += e.ByteSizeLong();
  if (total > kMaxAppendBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: at most ", kMaxAppendBytes, " bytes per request"));
  }
  std::vector<v1::Event> out(events.begin(), events.end());
  absl::flat_hash_set<std::string> ids;
  for (size_t i = 0; i < out.size(); ++i) {
    std::string f = absl::StrCat("events[", i, "]");
    RETURN_IF_ERROR(PrepareEvent(f, out[i], now_ms));
    if (!ids.insert(out[i].event_id()).second) {
      return Invalid(f + ".event_id", "repeats an earlier event_id of this request");
    }
  }
  return out;
}

}  // namespace onestory::timeline
