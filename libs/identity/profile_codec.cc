#include "libs/identity/profile_codec.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"

namespace onestory::identity {

std::string IdentifierField(const v1::Identifier& normalized) {
  return absl::StrCat(keys::IdentifierTypeName(normalized.type()), ":", normalized.value());
}

v1::Profile ProfileFromHashes(absl::string_view customer_id, const redis::Reply& profile_hash,
                              const redis::Reply& identifiers_hash) {
  v1::Profile p;
  p.set_customer_id(std::string(customer_id));
  const auto& f = profile_hash.elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    absl::string_view name = f[i].str;
    const std::string& value = f[i + 1].str;
    int64_t ms = 0;
    if (name == "display_name") {
      p.set_display_name(value);
    } else if (name == "language") {
      p.set_language(value);
    } else if (name == "tier") {
      p.set_tier(value);
    } else if (name == "created_at" && absl::SimpleAtoi(value, &ms)) {
      *p.mutable_created_at() = FromMillis(ms);
    } else if (name == "updated_at" && absl::SimpleAtoi(value, &ms)) {
      *p.mutable_updated_at() = FromMillis(ms);
    } else if (absl::StartsWith(name, kAttrPrefix)) {
      (*p.mutable_attributes())[std::string(name.substr(kAttrPrefix.size()))] = value;
    } else if (absl::StartsWith(name, kConsentPrefix)) {
      int channel = 0, state = 0;
      size_t colon = value.find(':');
      if (absl::SimpleAtoi(name.substr(kConsentPrefix.size()), &channel) &&
          colon != std::string::npos && absl::SimpleAtoi(value.substr(0, colon), &state) &&
          absl::SimpleAtoi(value.substr(colon + 1), &ms)) {
        v1::ChannelConsent* c = p.add_consents();
        c->set_channel(static_cast<v1::Channel>(channel));
        c->set_state(static_cast<v1::ConsentState>(state));
        *c->mutable_updated_at() = FromMillis(ms);
      }
    }
  }
  std::sort(p.mutable_consents()->begin(), p.mutable_consents()->end(),
            [](const auto& a, const auto& b) { return a.channel() < b.channel(); });
  const auto& ids = identifiers_hash.elements;
  for (size_t i = 0; i + 1 < ids.size(); i += 2) {
    absl::string_view field = ids[i].str;
    size_t colon = field.find(':');
    if (colon == absl::string_view::npos) continue;
    v1::LinkedIdentifier* li = p.add_identifiers();
    li->mutable_identifier()->set_type(keys::IdentifierTypeFromName(field.substr(0, colon)));
    li->mutable_identifier()->set_value(std::string(field.substr(colon + 1)));
    int64_t ms = 0;
    if (absl::SimpleAtoi(ids[i + 1].str, &ms)) *li->mutable_linked_at() = FromMillis(ms);
  }
  std::sort(p.mutable_identifiers()->begin(), p.mutable_identifiers()->end(),
            [](const auto& a, const auto& b) {
              if (a.identifier().type() != b.identifier().type()) {
                return a.identifier().type() < b.identifier().type();
              }
              return a.identifier().value() < b.identifier().value();
            });
  return p;
}

}  // namespace onestory::identity
