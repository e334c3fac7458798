#include "libs/identity/normalize.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/common/validation.h"

namespace onestory::identity {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ".value: ", why));
}

absl::StatusOr<std::string> NormalizePhone(absl::string_view field, absl::string_view raw) {
  std::string digits;
  for (char c : raw) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c != '+' && c != '-' && c != '.' && c != '(' && c != ')' && c != ' ' && c != '\t') {
      return Invalid(field, "a phone number holds only digits, spaces, '+', '-', '.', '(' and ')'");
    }
  }
  // The international prefix "00" (repeated ones too, so normalizing twice changes nothing).
  while (digits.size() > 2 && digits.compare(0, 2, "00") == 0) digits.erase(0, 2);
  if (digits.size() < kMinPhoneDigits || digits.size() > kMaxPhoneDigits) {
    return Invalid(field, absl::StrCat("a phone number with country code has ", kMinPhoneDigits,
                                       " to ", kMaxPhoneDigits, " digits"));
  }
  return digits;
}

absl::StatusOr<std::string> NormalizeEmail(absl::string_view field, absl::string_view trimmed) {
  std::string email = absl::AsciiStrToLower(trimmed);
  if (email.size() > kMaxEmailBytes) {
    return Invalid(field, absl::StrCat("an email address has at most ", kMaxEmailBytes, " bytes"));
  }
  size_t at = email.find('@');
  if (at == std::string::npos || at == 0 || email.find('@', at + 1) != std::string::npos) {
    return Invalid(field, "an email address has exactly one '@' with text before it");
  }
  absl::string_view domain = absl::string_view(email).substr(at + 1);
  size_t dot = domain.find('.');
  if (domain.empty() || dot == absl::string_view::npos || domain.front() == '.' ||
      domain.back() == '.') {
    return Invalid(field, "an email address needs a domain such as example.com after the '@'");
  }
  for (unsigned char c : email) {
    if (c <= 0x20 || c == 0x7f) return Invalid(field, "an email address holds no spaces");
  }
  return email;
}

}  // namespace

absl::StatusOr<v1::Identifier> NormalizeIdentifier(absl::string_view field,
                                                   const v1::Identifier& identifier) {
  if (identifier.type() == v1::IDENTIFIER_TYPE_UNSPECIFIED ||
      !v1::IdentifierType_IsValid(identifier.type())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field,
                     ".type: must be one of PHONE, EMAIL, APP_USER_ID, DEVICE_ID, "
                     "CHAT_SESSION, LOYALTY_ID, SOCIAL_HANDLE, CRM_ID"));
  }
  absl::string_view raw = identifier.value();
  if (raw.size() > 4 * kMaxIdentifierBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxIdentifierBytes, " bytes"));
  }
  if (!IsValidUtf8(raw)) return Invalid(field, "not valid UTF-8");
  absl::string_view trimmed = absl::StripAsciiWhitespace(raw);
  if (trimmed.empty()) return Invalid(field, "required");

  std::string value;
  switch (identifier.type()) {
    case v1::IDENTIFIER_TYPE_PHONE: {
      auto phone = NormalizePhone(field, trimmed);
      if (!phone.ok()) return phone.status();
      value = *std::move(phone);
      break;
    }
    case v1::IDENTIFIER_TYPE_EMAIL: {
      auto email = NormalizeEmail(field, trimmed);
      if (!email.ok()) return email.status();
      value = *std::move(email);
      break;
    }
    case v1::IDENTIFIER_TYPE_DEVICE_ID:
      value = absl::AsciiStrToLower(trimmed);
      break;
    case v1::IDENTIFIER_TYPE_LOYALTY_ID:
      for (char c : trimmed) {
        if (c != ' ' && c != '-') value.push_back(absl::ascii_toupper(c));
      }
      break;
    case v1::IDENTIFIER_TYPE_SOCIAL_HANDLE: {
      value = absl::AsciiStrToLower(trimmed);
      size_t colon = value.find(':');
      size_t handle_start = colon == std::string::npos ? 0 : colon + 1;
      // "@ann", "@ ann" and "x:@ann" name "ann" (spaces after the '@' too, so normalizing twice
      // changes nothing).
      while (handle_start < value.size() &&
             (value[handle_start] == '@' || absl::ascii_isspace(value[handle_start]))) {
        value.erase(handle_start, 1);
      }
      break;
    }
    default:  // APP_USER_ID, CHAT_SESSION, CRM_ID: kept as typed, trimmed.
      value = std::string(trimmed);
  }
  if (value.empty()) return Invalid(field, "required");
  if (absl::Status st = ValidateText(absl::StrCat(field, ".value"), value, kMaxIdentifierBytes,
                                     /*allow_newlines=*/false);
      !st.ok()) {
    return st;
  }
  v1::Identifier out;
  out.set_type(identifier.type());
  out.set_value(std::move(value));
  return out;
}

}  // namespace onestory::identity
