// Key encoding (libs/keys/key_schema.h) and identifier normalization on arbitrary bytes.
//
// EncodeKeyPart's output holds only [A-Za-z0-9._@+-%], so it can never close a hash tag or add
// a key separator, and decodes back to its input (the library has no decoder: a strict one is
// here), so two values never share a key. An identifier that normalizes leads to an index key
// with one hash tag, and normalizing it again changes nothing.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "libs/common/validation.h"
#include "libs/identity/normalize.h"
#include "libs/keys/key_schema.h"
#include "onestory/v1/common.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/request_checks.h"

namespace onestory::keys {
namespace {

bool IsPlain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '+' || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The bytes an encoded key part stands for; nullopt unless every escape is "%XX" (upper-case
// hex) of a byte that needed one.
std::optional<std::string> DecodeKeyPart(absl::string_view encoded) {
  std::string out;
  for (size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (IsPlain(c)) {
      out.push_back(c);
      continue;
    }
    if (c != '%' || encoded.size() - i < 3) return std::nullopt;
    int hi = HexValue(encoded[i + 1]), lo = HexValue(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    char byte = static_cast<char>(hi * 16 + lo);
    if (IsPlain(byte)) return std::nullopt;
    out.push_back(byte);
    i += 2;
  }
  return out;
}

void CheckEncodeKeyPart(absl::string_view raw) {
  std::string encoded = EncodeKeyPart(raw);
  for (char c : encoded) FUZZ_CHECK(IsPlain(c) || c == '%');
  FUZZ_CHECK(encoded.size() >= raw.size() && encoded.size() <= 3 * raw.size());
  std::optional<std::string> decoded = DecodeKeyPart(encoded);
  FUZZ_CHECK(decoded.has_value() && *decoded == raw);
}

void CheckIdentifier(v1::IdentifierType type, absl::string_view value) {
  absl::string_view name = IdentifierTypeName(type);
  FUZZ_CHECK(IdentifierTypeFromName(name) ==
             (name.empty() ? v1::IDENTIFIER_TYPE_UNSPECIFIED : type));
  v1::Identifier raw;
  raw.set_type(type);
  raw.set_value(std::string(value));
  // Keys of raw values too: IdentifierKey must hold whatever it is given inside the hash tag.
  if (!name.empty()) fuzz::CheckIdentifierKey("acme", raw);
  auto normalized = identity::NormalizeIdentifier("identifier", raw);
  if (!normalized.ok()) {
    fuzz::CheckRefusal(normalized.status(), "identifier");
    return;
  }
  FUZZ_CHECK(normalized->type() == type && !name.empty());
  FUZZ_CHECK(!normalized->value().empty());
  FUZZ_CHECK(normalized->value().size() <= identity::kMaxIdentifierBytes);
  FUZZ_CHECK(ValidateText("value", normalized->value(), identity::kMaxIdentifierBytes, false).ok());
  fuzz::CheckIdentifierKey("acme", *normalized);
  // A normalized value sent back gives itself again; a phone with '+' in front (without, a
  // 10-digit value of the North American shape reads as a national number).
  v1::Identifier back = *normalized;
  if (type == v1::IDENTIFIER_TYPE_PHONE) back.set_value("+" + back.value());
  auto again = identity::NormalizeIdentifier("identifier", back);
  FUZZ_CHECK(again.ok() && again->value() == normalized->value());
  // With a default country too.
  for (const identity::PhoneCountry& country : identity::PhoneCountries()) {
    auto placed = identity::NormalizeIdentifier("identifier", raw, &country);
    if (!placed.ok()) {
      fuzz::CheckRefusal(placed.status(), "identifier");
      continue;
    }
    v1::Identifier sent = *placed;
    if (type == v1::IDENTIFIER_TYPE_PHONE) sent.set_value("+" + sent.value());
    auto same = identity::NormalizeIdentifier("identifier", sent, &country);
    FUZZ_CHECK(same.ok() && same->value() == placed->value());
  }
}

}  // namespace
}  // namespace onestory::keys

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  auto type = static_cast<onestory::v1::IdentifierType>(in.ConsumeIntegralInRange<int>(-1, 9));
  std::string value = in.ConsumeRemainingBytesAsString();
  onestory::keys::CheckEncodeKeyPart(value);
  onestory::keys::CheckIdentifier(type, value);
  return 0;
}
