#include "libs/timeline/event_effects.h"

#include "absl/strings/str_cat.h"
#include "libs/common/time_util.h"
#include "libs/retention/retention.h"

namespace onestory::timeline {

retention::Limits RetentionLimits(absl::string_view tenant, const EngagementPolicy& policy) {
  return policy.retention != nullptr ? policy.retention->For(tenant) : retention::DefaultLimits();
}

void AppendEventArgs(const v1::Event& e, std::vector<std::string>* args) {
  args->push_back(e.event_id());
  args->push_back(e.SerializeAsString());
  args->push_back(absl::StrCat(static_cast<int>(e.channel())));
  args->push_back(absl::StrCat(static_cast<int>(e.kind())));
  args->push_back(absl::StrCat(ToMillis(e.occurred_at())));
  args->push_back(e.conversation_id());
  args->push_back(e.has_sentiment() ? absl::StrCat(e.sentiment()) : std::string());
  args->push_back(e.case_id());
}

}  // namespace onestory::timeline
