// Match keys: the values two customer profiles can share that suggest they are one person, and
// the deny list of values that must never count (a store kiosk's device, a call-center number).
//
//   for (const MatchKey& k : ProfileMatchKeys(profile)) {
//     // k.key "email:ann@example.com", k.code "same_email", k.detail "ann@example.com", 0.8
//   }
//   ASSIGN_OR_RETURN(MergeDenyList deny,
//   MergeDenyList::Parse("device_id:kiosk-*,phone:18005550100")); if (deny.DeniedKey(k.key))
//   continue;
//
// A key is "<type name>:<normalized value>" (type names of keys::IdentifierTypeName: "email",
// "phone", "loyalty", "app", "crm") or "name:<folded name>|<postal code>". Two profiles produce
// the same key exactly when they hold the same value however it was typed, so keys can be used
// as Redis set names (see merge_suggester.h). MergeSuggester uses these functions; they know
// nothing of Redis. Thread-safe (pure; a parsed MergeDenyList is immutable).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/identity/phone_countries.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {

// How much one shared value says that two customers are one person; a suggestion's score is the
// sum over its reasons. Ids issued by a system that knows the person (a loyalty card, an app
// login, a CRM record) are near-certain; an email is personal but sometimes shared in a
// household; a phone more often (a landline, a family plan); a name with a postal code can
// belong to two neighbours of one name.
inline constexpr float kWeightLoyaltyId = 0.9f;
inline constexpr float kWeightAppUserId = 0.9f;
inline constexpr float kWeightCrmId = 0.9f;
inline constexpr float kWeightEmail = 0.8f;
inline constexpr float kWeightPhone = 0.7f;
inline constexpr float kWeightNameAndPostalCode = 0.6f;

// The profile attributes read as identifiers, and the one read as the postal code.
inline constexpr absl::string_view kEmailAttribute = "email";
inline constexpr absl::string_view kPhoneAttribute = "phone";
inline constexpr absl::string_view kLoyaltyIdAttribute = "loyalty_id";
inline constexpr absl::string_view kAppUserIdAttribute = "app_user_id";
inline constexpr absl::string_view kCrmIdAttribute = "crm_id";
inline constexpr absl::string_view kPostalCodeAttribute = "postal_code";

// A postal code longer than this after normalization is not one: no name key is made.
inline constexpr size_t kMaxPostalCodeBytes = 32;

struct MatchKey {
  std::string code;    // MatchReason.code: "same_email", ..., "same_name_and_postal_code"
  std::string key;     // "<type name>:<normalized value>" or "name:<name>|<postal code>"
  std::string detail;  // MatchReason.detail: the normalized value (name key: "<name>, <postal>")
  float weight = 0;    // One of the kWeight* constants.
  // The identifier type of the value; UNSPECIFIED for the name key.
  v1::IdentifierType type = v1::IDENTIFIER_TYPE_UNSPECIFIED;
};

// The keys of a profile's attributes "email", "phone", "loyalty_id", "app_user_id" and "crm_id"
// (normalized as identifiers of that type; a value that is not one, such as a phone attribute
// "n/a", is skipped), then the name key when display_name and attribute "postal_code" both
// normalize to non-empty text. In that order; no duplicates.
// `country`: the tenant's default country for a phone attribute in national format (see
// NormalizeIdentifier; nullptr: none), the one its identifiers are normalized with.
std::vector<MatchKey> ProfileMatchKeys(const v1::Profile& p, const PhoneCountry* country = nullptr);

// The keys of the profile's linked identifiers (p.identifiers(), already normalized) of the
// types email, phone, loyalty id, app user id and CRM id, in the profile's order.
std::vector<MatchKey> IdentifierMatchKeys(const v1::Profile& p);

// The name part of the name key: ASCII letters lower-cased, '.' and ',' dropped, runs of ASCII
// whitespace collapsed to one space, trimmed: "  Ann   LEE. " is "ann lee". Bytes outside ASCII
// are kept as they are (no Unicode case folding: "ÉVA" and "éva" differ).
std::string FoldName(absl::string_view name);
// The postal code part: ASCII letters upper-cased, ASCII whitespace and '-' removed:
// "sw1a 1aa" is "SW1A1AA", "94107-1234" is "941071234".
std::string FoldPostalCode(absl::string_view postal_code);

// Identifier values that are never a reason to suggest a merge: shared devices (a store kiosk),
// a company's own phone number that customers type into forms.
//
// Parsed from a comma-separated list of "<type>:<value>" entries, the type named as in the
// proto without its prefix ("phone", "email", "app_user_id", "device_id", "chat_session",
// "loyalty_id", "social_handle", "crm_id") or by its key name ("app", "device", ...). The value
// is normalized as an identifier of the type ("phone:+1 800 555-0100" denies "18005550100").
// A trailing '*' makes the entry a prefix: "device_id:kiosk-*" denies every device id starting
// with "kiosk-" (the prefix is case-folded like the type's values, and for phones reduced to
// its digits); "device_id:*" denies every device id. Whitespace around entries and empty entries
// are ignored, so "" is the empty list.
class MergeDenyList {
 public:
  MergeDenyList() = default;

  // INVALID_ARGUMENT naming the bad entry: no ':', an unknown type, a value that is not of
  // its type (or empty), a '*' anywhere but at the end.
  static absl::StatusOr<MergeDenyList> Parse(absl::string_view spec);

  // Whether a normalized value of the type is denied.
  bool Denied(v1::IdentifierType type, absl::string_view normalized_value) const;
  // The same for a match key "<type name>:<normalized value>" (key names, as MatchKey::key);
  // false for the name key and for anything else that names no identifier type.
  bool DeniedKey(absl::string_view key) const;

  bool empty() const { return exact_.empty() && prefixes_.empty(); }

 private:
  absl::flat_hash_set<std::string> exact_;                            // "<key name>:<value>"
  std::vector<std::pair<v1::IdentifierType, std::string>> prefixes_;  // (type, value prefix)
};

}  // namespace onestory::identity
