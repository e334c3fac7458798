#include "libs/common/validation.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace onestory {
namespace {

// 0x20-0x7E: valid UTF-8, and no control character.
bool IsPrintableAscii(char c) { return static_cast<unsigned char>(c) - 0x20u < 0x5Fu; }

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

absl::Status ValidateIdChars(absl::string_view field, absl::string_view id, size_t max_bytes) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (id.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", max_bytes, " characters"));
  }
  for (char c : id) {
    if (!IsIdChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": only letters, digits, '_' and '-' are allowed"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTenant(absl::string_view tenant) {
  return ValidateIdChars("tenant", tenant, kMaxTenantBytes);
}

absl::Status ValidateCustomerId(absl::string_view field, absl::string_view id) {
  return ValidateIdChars(field, id, kMaxCustomerIdBytes);
}

absl::Status ValidateToken(absl::string_view field, absl::string_view value, size_t max_bytes,
                           bool allow_empty) {
  if (value.empty()) {
    return allow_empty ? absl::OkStatus()
                       : absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  }
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than ", max_bytes, " bytes"));
  }
  for (unsigned char c : value) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": only printable ASCII without spaces is allowed"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view field, absl::string_view value, size_t max_bytes,
                          bool allow_newlines) {
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than ", max_bytes, " bytes"));
  }
  // Printable ASCII (0x20-0x7E), what most text starts with, is valid UTF-8 and holds no control
  // character: the checks below start after it (they read a byte and the one after it only).
  size_t printable = 0;
  while (printable < value.size() && IsPrintableAscii(value[printable])) ++printable;
  value.remove_prefix(printable);
  if (!IsValidUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not valid UTF-8"));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    unsigned char c = value[i];
    if (IsPrintableAscii(c)) continue;
    bool allowed_space = allow_newlines && (c == '\n' || c == '\r' || c == '\t');
    // C0 controls, DEL, and the C1 controls U+0080..U+009F (UTF-8 0xC2 0x80..0x9F).
    bool c1 = c == 0xC2 && i + 1 < value.size() && static_cast<unsigned char>(value[i + 1]) < 0xA0;
    if ((c < 0x20 && !allowed_space) || c == 0x7f || c1) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": holds a control character"));
    }
  }
  return absl::OkStatus();
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string NewRandomId(absl::string_view prefix) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* rng ABSL_GUARDED_BY(mu) = nullptr;
  uint64_t a, b, c;
  {
    absl::MutexLock lock(&mu);
    if (rng == nullptr) {
      std::random_device rd;
      std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
      rng = new std::mt19937_64(seq);
    }
    a = (*rng)();
    b = (*rng)();
    c = (*rng)();
  }
  std::string out(prefix);
  out.reserve(prefix.size() + 26);
  for (int i = 0; i < 26; ++i) {
    uint64_t word = i < 12 ? a : (i < 24 ? b : c);
    out.push_back(kAlphabet[(word >> ((i % 12) * 5)) & 31]);
  }
  return out;
}

}  // namespace onestory
