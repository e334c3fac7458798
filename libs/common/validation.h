// Checks shared by every request: tenant and customer ids, tokens, free text.
//
//   RETURN_IF_ERROR(ValidateTenant(req.tenant()));
//   RETURN_IF_ERROR(ValidateText("events[3].summary", e.summary(), kMaxSummaryBytes));
//
// Every error is INVALID_ARGUMENT and names the field and the reason. Tenant and customer ids
// use a character set that cannot form a Redis hash tag or key separator ('{', '}', ':'), so a
// validated id can never reach another tenant's or customer's keys. Thread-safe (pure).
#pragma once

#include <cstddef>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace onestory {

inline constexpr size_t kMaxTenantBytes = 64;
inline constexpr size_t kMaxCustomerIdBytes = 64;

// 1-64 characters of [A-Za-z0-9_-].
absl::Status ValidateTenant(absl::string_view tenant);
absl::Status ValidateCustomerId(absl::string_view field, absl::string_view id);

// 1-max bytes of printable ASCII without spaces (event ids, conversation ids, agent ids).
// Empty is allowed only when allow_empty.
absl::Status ValidateToken(absl::string_view field, absl::string_view value, size_t max_bytes,
                           bool allow_empty);

// Valid UTF-8, at most max_bytes, no control characters (C0, DEL, C1) other than tab, CR and LF
// (and those only when allow_newlines).
absl::Status ValidateText(absl::string_view field, absl::string_view value, size_t max_bytes,
                          bool allow_newlines = true);

bool IsValidUtf8(absl::string_view s);

// A new random id: prefix followed by 26 characters of Crockford base32 (130 random bits).
// Thread-safe.
std::string NewRandomId(absl::string_view prefix);

}  // namespace onestory
