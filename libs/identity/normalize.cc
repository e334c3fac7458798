#include "libs/identity/normalize.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/common/validation.h"

namespace onestory::identity {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ".value: ", why));
}

absl::Status BadLength(absl::string_view field) {
  return Invalid(field, absl::StrCat("a phone number with country code has ", kMinPhoneDigits,
                                     " to ", kMaxPhoneDigits, " digits"));
}

bool InRange(size_t n, const PhoneCountry& c) {
  return n >= static_cast<size_t>(c.min_digits) && n <= static_cast<size_t>(c.max_digits);
}

// "415 555 0100": an area code and an exchange code, each starting with 2-9.
bool LooksNorthAmericanNational(absl::string_view digits) {
  return digits.size() == 10 && digits[0] >= '2' && digits[3] >= '2';
}

// `digits` (written without '+' or an international prefix) as a national number of `c` with
// its calling code in front, or "" when they are not one.
std::string FromNational(absl::string_view digits, const PhoneCountry& c) {
  auto starts_well = [&c](absl::string_view nsn) {
    return c.first_digits.empty() ||
           (!nsn.empty() && c.first_digits.find(nsn[0]) != absl::string_view::npos);
  };
  if (!c.trunk_prefix.empty() && absl::StartsWith(digits, c.trunk_prefix)) {
    absl::string_view nsn = digits.substr(c.trunk_prefix.size());
    if (InRange(nsn.size(), c) && starts_well(nsn)) return absl::StrCat(c.calling_code, nsn);
  }
  if ((c.trunk_prefix.empty() || c.trunk_optional) && InRange(digits.size(), c) &&
      starts_well(digits)) {
    return absl::StrCat(c.calling_code, digits);
  }
  return "";
}

absl::StatusOr<std::string> NormalizePhone(absl::string_view field, absl::string_view raw,
                                           const PhoneCountry* country) {
  std::string digits;
  bool plus = false;  // a '+' before the first digit: the calling code follows
  for (char c : raw) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c == '+') {
      plus = plus || digits.empty();
    } else if (c != '-' && c != '.' && c != '(' && c != ')' && c != ' ' && c != '\t') {
      return Invalid(field, "a phone number holds only digits, spaces, '+', '-', '.', '(' and ')'");
    }
  }
  bool international = plus;
  // The country's own international prefix first: Australia's "0011" also starts with "00".
  if (!international && country != nullptr && !country->international_prefix.empty() &&
      absl::StartsWith(digits, country->international_prefix)) {
    digits.erase(0, country->international_prefix.size());
    international = true;
  }
  international = international || absl::StartsWith(digits, "00");
  // The international prefix "00" (repeated ones too, so normalizing twice changes nothing).
  while (digits.size() > 2 && digits.compare(0, 2, "00") == 0) digits.erase(0, 2);
  if (international) {
    if (absl::StartsWith(digits, "0")) return Invalid(field, "a country code never starts with 0");
    if (digits.size() < kMinPhoneDigits || digits.size() > kMaxPhoneDigits) {
      return BadLength(field);
    }
    return digits;
  }
  // Written without '+' or an international prefix: a national number of the tenant's default
  // country, or a number that starts with its calling code.
  if (country != nullptr) {
    if (std::string national = FromNational(digits, *country); !national.empty()) {
      if (national.size() > kMaxPhoneDigits) return BadLength(field);
      return national;
    }
    // Already with the country's own calling code (its shortest number: see phone_countries.cc).
    if (absl::StartsWith(digits, country->calling_code) &&
        InRange(digits.size() - country->calling_code.size(), *country)) {
      return digits;
    }
  }
  absl::string_view no_country = country == nullptr
                                     ? "; the tenant has no default country for national numbers"
                                     : absl::string_view();
  if (absl::StartsWith(digits, "0")) {
    return Invalid(
        field,
        absl::StrCat("a national phone number (it starts with a trunk prefix 0",
                     country == nullptr ? "" : absl::StrCat(", and is not one of ", country->iso),
                     ") needs its country code: write it as +<country code> <number>", no_country));
  }
  if (LooksNorthAmericanNational(digits)) {
    return Invalid(field,
                   absl::StrCat("10 digits without a country code are a North American national "
                                "number or a number whose country cannot be told: write it as +1 "
                                "<number>, or +<country code> <number>",
                                no_country));
  }
  if (digits.size() < kMinPhoneDigits || digits.size() > kMaxPhoneDigits) {
    return BadLength(field);
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
                                                   const v1::Identifier& identifier,
                                                   const PhoneCountry* default_country) {
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
      auto phone = NormalizePhone(field, trimmed, default_country);
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
