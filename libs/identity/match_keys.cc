#include "libs/identity/match_keys.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/validation.h"
#include "libs/identity/normalize.h"
#include "libs/keys/key_schema.h"

namespace onestory::identity {
namespace {

// The identifier types that are match keys, strongest first.
struct KeyType {
  v1::IdentifierType type;
  absl::string_view attribute;
  absl::string_view code;
  float weight;
};
constexpr KeyType kKeyTypes[] = {
    {v1::IDENTIFIER_TYPE_LOYALTY_ID, kLoyaltyIdAttribute, "same_loyalty_id", kWeightLoyaltyId},
    {v1::IDENTIFIER_TYPE_APP_USER_ID, kAppUserIdAttribute, "same_app_user_id", kWeightAppUserId},
    {v1::IDENTIFIER_TYPE_CRM_ID, kCrmIdAttribute, "same_crm_id", kWeightCrmId},
    {v1::IDENTIFIER_TYPE_EMAIL, kEmailAttribute, "same_email", kWeightEmail},
    {v1::IDENTIFIER_TYPE_PHONE, kPhoneAttribute, "same_phone", kWeightPhone},
};

const KeyType* FindKeyType(v1::IdentifierType type) {
  for (const KeyType& t : kKeyTypes) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

MatchKey KeyOf(const KeyType& t, const std::string& normalized) {
  return MatchKey{std::string(t.code),
                  absl::StrCat(keys::IdentifierTypeName(t.type), ":", normalized), normalized,
                  t.weight, t.type};
}

// "device_id" (the proto enum name without IDENTIFIER_TYPE_, lower-cased) or "device" (the key
// name).
v1::IdentifierType DenyListType(absl::string_view name) {
  if (v1::IdentifierType t = keys::IdentifierTypeFromName(name);
      t != v1::IDENTIFIER_TYPE_UNSPECIFIED) {
    return t;
  }
  constexpr absl::string_view kEnumPrefix = "IDENTIFIER_TYPE_";
  for (int i = v1::IdentifierType_MIN; i <= v1::IdentifierType_MAX; ++i) {
    if (i == v1::IDENTIFIER_TYPE_UNSPECIFIED || !v1::IdentifierType_IsValid(i)) continue;
    auto type = static_cast<v1::IdentifierType>(i);
    absl::string_view enum_name = v1::IdentifierType_Name(type);
    if (absl::ConsumePrefix(&enum_name, kEnumPrefix) && absl::AsciiStrToLower(enum_name) == name) {
      return type;
    }
  }
  return v1::IDENTIFIER_TYPE_UNSPECIFIED;
}

// A prefix folded the way NormalizeIdentifier folds whole values of the type, without the
// checks only a whole value can pass (a phone's 7 digits, an email's '@').
absl::StatusOr<std::string> NormalizePrefix(v1::IdentifierType type, absl::string_view raw) {
  std::string out;
  switch (type) {
    case v1::IDENTIFIER_TYPE_PHONE:
      for (char c : raw) {
        if (absl::ascii_isdigit(c)) {
          out.push_back(c);
        } else if (!absl::ascii_isspace(c) &&
                   absl::string_view("+-.()").find(c) == absl::string_view::npos) {
          return absl::InvalidArgumentError(
              "a phone number holds only digits, spaces, '+', '-', '.', '(' and ')'");
        }
      }
      if (absl::StartsWith(out, "00") && out.size() > 2) out.erase(0, 2);
      break;
    case v1::IDENTIFIER_TYPE_EMAIL:
    case v1::IDENTIFIER_TYPE_DEVICE_ID:
    case v1::IDENTIFIER_TYPE_SOCIAL_HANDLE:
      out = absl::AsciiStrToLower(raw);
      break;
    case v1::IDENTIFIER_TYPE_LOYALTY_ID:
      for (char c : raw) {
        if (c != ' ' && c != '-') out.push_back(absl::ascii_toupper(c));
      }
      break;
    default:
      out = std::string(raw);
  }
  if (absl::Status st = ValidateText("value", out, kMaxIdentifierBytes, /*allow_newlines=*/false);
      !st.ok()) {
    return st;
  }
  return out;
}

}  // namespace

std::string FoldName(absl::string_view name) {
  std::string out;
  bool space = false;
  for (char c : name) {
    if (c == '.' || c == ',') continue;
    if (absl::ascii_isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(absl::ascii_tolower(c));
  }
  return out;
}

std::string FoldPostalCode(absl::string_view postal_code) {
  std::string out;
  for (char c : postal_code) {
    if (!absl::ascii_isspace(c) && c != '-') out.push_back(absl::ascii_toupper(c));
  }
  return out;
}

std::vector<MatchKey> ProfileMatchKeys(const v1::Profile& p, const PhoneCountry* country) {
  std::vector<MatchKey> out;
  for (const KeyType& t : kKeyTypes) {
    auto it = p.attributes().find(std::string(t.attribute));
    if (it == p.attributes().end()) continue;
    v1::Identifier raw;
    raw.set_type(t.type);
    raw.set_value(it->second);
    absl::StatusOr<v1::Identifier> id = NormalizeIdentifier("attribute", raw, country);
    if (id.ok()) out.push_back(KeyOf(t, id->value()));
  }
  auto postal = p.attributes().find(std::string(kPostalCodeAttribute));
  if (postal != p.attributes().end()) {
    std::string name = FoldName(p.display_name());
    std::string code = FoldPostalCode(postal->second);
    if (!name.empty() && !code.empty() && code.size() <= kMaxPostalCodeBytes) {
      out.push_back(MatchKey{"same_name_and_postal_code", absl::StrCat("name:", name, "|", code),
                             absl::StrCat(name, ", ", code), kWeightNameAndPostalCode,
                             v1::IDENTIFIER_TYPE_UNSPECIFIED});
    }
  }
  return out;
}

std::vector<MatchKey> IdentifierMatchKeys(const v1::Profile& p) {
  std::vector<MatchKey> out;
  for (const v1::LinkedIdentifier& li : p.identifiers()) {
    const KeyType* t = FindKeyType(li.identifier().type());
    if (t != nullptr && !li.identifier().value().empty()) {
      out.push_back(KeyOf(*t, li.identifier().value()));
    }
  }
  return out;
}

absl::StatusOr<MergeDenyList> MergeDenyList::Parse(absl::string_view spec) {
  MergeDenyList list;
  for (absl::string_view entry : absl::StrSplit(spec, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    auto bad = [entry](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge deny list entry \"", entry, "\": ", why));
    };
    size_t colon = entry.find(':');
    if (colon == absl::string_view::npos) return bad("expected <type>:<value>");
    v1::IdentifierType type = DenyListType(entry.substr(0, colon));
    if (type == v1::IDENTIFIER_TYPE_UNSPECIFIED) {
      return bad(
          "unknown type; one of phone, email, app_user_id, device_id, chat_session, loyalty_id, "
          "social_handle, crm_id");
    }
    absl::string_view value = absl::StripAsciiWhitespace(entry.substr(colon + 1));
    size_t star = value.find('*');
    if (star != absl::string_view::npos && star + 1 != value.size()) {
      return bad("'*' may only end the value (a prefix)");
    }
    if (star != absl::string_view::npos) {
      absl::StatusOr<std::string> prefix = NormalizePrefix(type, value.substr(0, star));
      if (!prefix.ok()) return bad(prefix.status().message());
      list.prefixes_.emplace_back(type, *std::move(prefix));
      continue;
    }
    v1::Identifier raw;
    raw.set_type(type);
    raw.set_value(std::string(value));
    absl::StatusOr<v1::Identifier> id = NormalizeIdentifier("entry", raw);
    if (!id.ok()) {
      absl::string_view why = id.status().message();
      absl::ConsumePrefix(&why, "entry.value: ");
      return bad(why);
    }
    list.exact_.insert(absl::StrCat(keys::IdentifierTypeName(type), ":", id->value()));
  }
  return list;
}

bool MergeDenyList::Denied(v1::IdentifierType type, absl::string_view normalized_value) const {
  if (exact_.contains(absl::StrCat(keys::IdentifierTypeName(type), ":", normalized_value))) {
    return true;
  }
  for (const auto& [prefix_type, prefix] : prefixes_) {
    if (prefix_type == type && absl::StartsWith(normalized_value, prefix)) return true;
  }
  return false;
}

bool MergeDenyList::DeniedKey(absl::string_view key) const {
  size_t colon = key.find(':');
  if (colon == absl::string_view::npos) return false;
  v1::IdentifierType type = keys::IdentifierTypeFromName(key.substr(0, colon));
  if (type == v1::IDENTIFIER_TYPE_UNSPECIFIED) return false;
  return Denied(type, key.substr(colon + 1));
}

}  // namespace onestory::identity
