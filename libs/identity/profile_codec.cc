#include "libs/identity/profile_codec.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"

namespace onestory::identity {

std::string IdentifierField(const v1::Identifier& normalized) {
  return absl::StrCat(keys::IdentifierTypeName(normalized.type()), ":", normalized.value());
}

std::string EncodeEvidence(const v1::LinkEvidence& e) {
  return absl::StrCat("v2|", ToMillis(e.first_seen()), "|", ToMillis(e.last_seen()), "|",
                      static_cast<int>(e.verification()), "|", static_cast<int>(e.channel()), "|",
                      static_cast<int>(e.linked_by().type()), "|", e.merge_id(), "|",
                      e.merged_from(), "|", e.linked_by().id());
}

bool DecodeEvidence(absl::string_view value, v1::LinkEvidence* e) {
  int64_t ms = 0;
  if (absl::SimpleAtoi(value, &ms)) {  // written before evidence existed: linked_at
    *e->mutable_first_seen() = FromMillis(ms);
    *e->mutable_last_seen() = FromMillis(ms);
    e->set_verification(v1::VERIFICATION_UNVERIFIED);
    e->mutable_linked_by()->set_type(v1::Actor::TYPE_SYSTEM);
    return true;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(value, absl::MaxSplits('|', 8));
  int64_t first = 0, last = 0;
  int verification = 0, channel = 0, actor_type = 0;
  if (parts.size() != 9 || parts[0] != "v2" || !absl::SimpleAtoi(parts[1], &first) ||
      !absl::SimpleAtoi(parts[2], &last) || !absl::SimpleAtoi(parts[3], &verification) ||
      !absl::SimpleAtoi(parts[4], &channel) || !absl::SimpleAtoi(parts[5], &actor_type)) {
    return false;
  }
  *e->mutable_first_seen() = FromMillis(first);
  *e->mutable_last_seen() = FromMillis(last);
  e->set_verification(static_cast<v1::Verification>(verification));
  e->set_channel(static_cast<v1::Channel>(channel));
  e->mutable_linked_by()->set_type(static_cast<v1::Actor::Type>(actor_type));
  e->set_merge_id(std::string(parts[6]));
  e->set_merged_from(std::string(parts[7]));
  e->mutable_linked_by()->set_id(std::string(parts[8]));
  return true;
}

bool LinkedIdentifierFromEntry(absl::string_view field, absl::string_view value,
                               v1::LinkedIdentifier* li) {
  size_t colon = field.find(':');
  if (colon == absl::string_view::npos) return false;
  v1::IdentifierType type = keys::IdentifierTypeFromName(field.substr(0, colon));
  if (type == v1::IDENTIFIER_TYPE_UNSPECIFIED) return false;
  li->mutable_identifier()->set_type(type);
  li->mutable_identifier()->set_value(std::string(field.substr(colon + 1)));
  if (DecodeEvidence(value, li->mutable_evidence())) {
    *li->mutable_linked_at() = li->evidence().first_seen();
    // Stored: every merge that carried it, innermost first; shown: the latest.
    const std::string& chain = li->evidence().merge_id();
    size_t comma = chain.rfind(',');
    if (comma != std::string::npos) li->mutable_evidence()->set_merge_id(chain.substr(comma + 1));
  }
  return true;
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
    v1::LinkedIdentifier li;
    if (LinkedIdentifierFromEntry(ids[i].str, ids[i + 1].str, &li)) {
      *p.add_identifiers() = std::move(li);
    }
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

absl::Status GuardRead(absl::string_view customer_id, const redis::Reply& profile_hash) {
  const std::string* created = nullptr;
  const std::string* merged_into = nullptr;
  const std::string* merge_id = nullptr;
  const std::string* merged_head = nullptr;
  bool erased = false;
  const auto& f = profile_hash.elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    const std::string& name = f[i].str;
    if (name == "created_at") created = &f[i + 1].str;
    if (name == "merged_into") merged_into = &f[i + 1].str;
    if (name == "merge_id") merge_id = &f[i + 1].str;
    if (name == "merged_head") merged_head = &f[i + 1].str;
    if (name == "erased_at") erased = true;
  }
  if (created == nullptr) {
    // An erased customer keeps a tombstone (erased_at only, libs/privacy): never reused.
    return absl::NotFoundError(
        absl::StrCat("customer ", customer_id, erased ? " was erased" : " not found"));
  }
  if (merged_into != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("moved:", *merged_into, ":", merge_id ? *merge_id : "", ":",
                     merged_head ? *merged_head : "0-0", " customer ", customer_id,
                     " was merged into ", *merged_into));
  }
  return absl::OkStatus();
}

}  // namespace onestory::identity
