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
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "onestory/v1/common.pb.h"

namespace onestory::identity {

inline constexpr size_t kMaxIdentifierBytes = 256;
inline constexpr size_t kMaxEmailBytes = 254;
inline constexpr size_t kMinPhoneDigits = 7;
inline constexpr size_t kMaxPhoneDigits = 15;

absl::StatusOr<v1::Identifier> NormalizeIdentifier(absl::string_view field,
                                                   const v1::Identifier& identifier);

}  // namespace onestory::identity
