// Normalization of channel identifiers, so one phone number or email is one key however it was
// typed: "+1 (415) 555-0100" and "14155550100" are the same phone, " Ann@Example.COM" and
// "ann@example.com" the same email. The rules per type are documented on IdentifierType in
// proto/onestory/v1/common.proto.
//
//   ASSIGN_OR_RETURN(v1::Identifier id, NormalizeIdentifier("identifier", request.identifier()));
//
// Returns INVALID_ARGUMENT naming `field` ("identifier.value: ...") for an unspecified or
// unknown type, an empty value, a value that is not of its type, invalid UTF-8, control
// characters, or a value over its limit. Thread-safe (pure).
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/identity/phone_countries.h"
#include "onestory/v1/common.pb.h"

namespace onestory::identity {

inline constexpr size_t kMaxIdentifierBytes = 256;
inline constexpr size_t kMaxEmailBytes = 254;
inline constexpr size_t kMinPhoneDigits = 7;
inline constexpr size_t kMaxPhoneDigits = 15;

// `default_country` (the tenant's, phone_countries.h; nullptr: none) places phone numbers
// written in national format, without '+' or an international prefix: with US, "(415)
// 555-0100" and "1 415 555 0100" are 14155550100; with GB, "020 7946 0958" is 442079460958.
// A number written with '+', "00" (or the country's own international prefix, "011" for US)
// is taken as starting with its calling code, and so is one without when it is not a national
// number of the default country, except two forms that are national numbers of some country
// and cannot be placed: a leading 0 (a trunk prefix; no calling code starts with 0) and 10
// digits shaped like a North American number (area code and exchange starting with 2-9);
// those are INVALID_ARGUMENT, never a phone of their own. Normalized values never start with 0;
// sending one back with '+' in front always gives it again (without, a 10-digit value of the
// North American shape, +32 2 555 01 00's 3225550100 say, is refused or read as national).
absl::StatusOr<v1::Identifier> NormalizeIdentifier(absl::string_view field,
                                                   const v1::Identifier& identifier,
                                                   const PhoneCountry* default_country = nullptr);

}  // namespace onestory::identity
