#include "libs/identity/phone_countries.h"

#include <array>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/validation.h"

namespace onestory::identity {
namespace {

// ISO code, calling code, trunk prefix, national number digits (min, max), trunk optional,
// first digits, international prefix besides "00". Lengths are those of the national
// significant numbers (ITU-T E.164 national numbering plans); keep README.md's table in step.
//
// A country whose national numbers may be written without a trunk prefix (trunk_optional) has
// its calling code plus its shortest national number longer than its longest national number,
// so a number already carrying the calling code is never read again as a national one, and
// normalizing twice changes nothing (Italy, with 6- to 11-digit numbers and no trunk prefix,
// cannot be told apart this way and is left out).
constexpr std::array<PhoneCountry, 21> kCountries = {{
    {"AT", "43", "0", 4, 13, false, "", ""},
    {"AU", "61", "0", 9, 9, false, "", "0011"},
    {"BE", "32", "0", 8, 9, false, "", ""},
    {"CA", "1", "1", 10, 10, true, "23456789", "011"},
    {"CH", "41", "0", 9, 9, false, "", ""},
    {"DE", "49", "0", 6, 11, false, "", ""},
    {"DK", "45", "", 8, 8, true, "", ""},
    {"ES", "34", "", 9, 9, true, "", ""},
    {"FR", "33", "0", 9, 9, false, "", ""},
    {"GB", "44", "0", 9, 10, false, "", ""},
    {"IE", "353", "0", 7, 9, false, "", ""},
    {"IN", "91", "0", 10, 10, true, "", ""},
    {"JP", "81", "0", 9, 10, false, "", "010"},
    {"MX", "52", "", 10, 10, true, "", ""},
    {"NL", "31", "0", 9, 9, false, "", ""},
    {"NO", "47", "", 8, 8, true, "", ""},
    {"NZ", "64", "0", 8, 10, false, "", ""},
    {"PT", "351", "", 9, 9, true, "", ""},
    {"SE", "46", "0", 7, 9, false, "", ""},
    {"SG", "65", "", 8, 8, true, "", ""},
    {"US", "1", "1", 10, 10, true, "23456789", "011"},
}};

}  // namespace

absl::Span<const PhoneCountry> PhoneCountries() { return kCountries; }

const PhoneCountry* FindPhoneCountry(absl::string_view iso) {
  for (const PhoneCountry& c : kCountries) {
    if (absl::EqualsIgnoreCase(c.iso, iso)) return &c;
  }
  return nullptr;
}

absl::StatusOr<DefaultCountries> DefaultCountries::Parse(absl::string_view spec) {
  DefaultCountries out;
  for (absl::string_view part : absl::StrSplit(spec, ';', absl::SkipWhitespace())) {
    auto bad = [part](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("default country entry \"", absl::StripAsciiWhitespace(part), "\": ", why));
    };
    std::vector<absl::string_view> kv = absl::StrSplit(part, '=');
    absl::string_view tenant = absl::StripAsciiWhitespace(kv[0]);
    absl::string_view iso = kv.size() == 2 ? absl::StripAsciiWhitespace(kv[1]) : "";
    if (tenant.empty() || iso.empty()) return bad("expected <tenant or *>=<ISO country code>");
    const PhoneCountry* country = FindPhoneCountry(iso);
    if (country == nullptr) {
      std::vector<absl::string_view> known;
      for (const PhoneCountry& c : kCountries) known.push_back(c.iso);
      return bad(absl::StrCat("unknown country; one of ", absl::StrJoin(known, ", ")));
    }
    if (tenant == "*") {
      if (out.every_tenant_ != nullptr) return bad("'*' is named twice");
      out.every_tenant_ = country;
      continue;
    }
    if (absl::Status st = ValidateTenant(std::string(tenant)); !st.ok()) return bad(st.message());
    if (!out.by_tenant_.emplace(std::string(tenant), country).second) {
      return bad("the tenant is named twice");
    }
  }
  return out;
}

const PhoneCountry* DefaultCountries::For(absl::string_view tenant) const {
  auto it = by_tenant_.find(tenant);
  return it != by_tenant_.end() ? it->second : every_tenant_;
}

}  // namespace onestory::identity
