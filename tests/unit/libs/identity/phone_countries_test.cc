// Phone numbers in national format: the default country table, its per-tenant flag, and
// NormalizeIdentifier with and without a default country.
#include "libs/identity/phone_countries.h"

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/identity/match_keys.h"
#include "libs/identity/normalize.h"

namespace onestory::identity {
namespace {

using ::testing::HasSubstr;

const PhoneCountry* Country(absl::string_view iso) {
  const PhoneCountry* c = FindPhoneCountry(iso);
  EXPECT_NE(c, nullptr) << iso;
  return c;
}

// The normalized phone, or "<error: ...>" so a failing expectation shows why.
std::string Phone(absl::string_view value, const PhoneCountry* country = nullptr) {
  v1::Identifier id;
  id.set_type(v1::IDENTIFIER_TYPE_PHONE);
  id.set_value(std::string(value));
  absl::StatusOr<v1::Identifier> out = NormalizeIdentifier("identifier", id, country);
  if (!out.ok()) return absl::StrCat("<error: ", out.status().ToString(), ">");
  return out->value();
}

absl::Status PhoneError(absl::string_view value, const PhoneCountry* country = nullptr) {
  v1::Identifier id;
  id.set_type(v1::IDENTIFIER_TYPE_PHONE);
  id.set_value(std::string(value));
  return NormalizeIdentifier("customer.identifier", id, country).status();
}

// ---------------------------------------------------------------------------------------------
// The table

TEST(PhoneCountriesTest, TableIsSortedUniqueAndConsistent) {
  std::set<std::string> seen;
  std::string previous;
  for (const PhoneCountry& c : PhoneCountries()) {
    SCOPED_TRACE(c.iso);
    EXPECT_EQ(c.iso.size(), 2u);
    EXPECT_LT(previous, std::string(c.iso));
    previous = std::string(c.iso);
    EXPECT_TRUE(seen.insert(std::string(c.iso)).second);
    EXPECT_FALSE(c.calling_code.empty());
    EXPECT_NE(c.calling_code[0], '0');
    EXPECT_GT(c.min_digits, 0);
    EXPECT_LE(c.min_digits, c.max_digits);
    // A number with the calling code is never read again as a national one.
    if (c.trunk_prefix.empty() || c.trunk_optional) {
      EXPECT_GT(static_cast<int>(c.calling_code.size()) + c.min_digits, c.max_digits);
    }
  }
  EXPECT_GE(seen.size(), 20u);
}

TEST(PhoneCountriesTest, FindIsCaseInsensitiveAndKnowsOnlyTheTable) {
  EXPECT_EQ(FindPhoneCountry("us"), FindPhoneCountry("US"));
  ASSERT_NE(FindPhoneCountry("GB"), nullptr);
  EXPECT_EQ(FindPhoneCountry("GB")->calling_code, "44");
  EXPECT_EQ(FindPhoneCountry("XX"), nullptr);
  EXPECT_EQ(FindPhoneCountry(""), nullptr);
}

// ---------------------------------------------------------------------------------------------
// --default_country

TEST(DefaultCountriesTest, PerTenantWithAStarForTheRest) {
  absl::StatusOr<DefaultCountries> c = DefaultCountries::Parse(" acme = US ; *=gb;beta=DE ");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->For("acme"), FindPhoneCountry("US"));
  EXPECT_EQ(c->For("beta"), FindPhoneCountry("DE"));
  EXPECT_EQ(c->For("other"), FindPhoneCountry("GB"));
  absl::StatusOr<DefaultCountries> only = DefaultCountries::Parse("acme=US");
  ASSERT_TRUE(only.ok());
  EXPECT_EQ(only->For("other"), nullptr);
  absl::StatusOr<DefaultCountries> none = DefaultCountries::Parse("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(none->For("acme"), nullptr);
}

TEST(DefaultCountriesTest, RejectsMalformedEntriesNamingThem) {
  for (absl::string_view bad : {"acme", "acme=", "=US", "acme=XX", "acme=USA", "acme=US;acme=GB",
                                "*=US;*=GB", "ac:me=US", "acme=US=GB"}) {
    absl::StatusOr<DefaultCountries> c = DefaultCountries::Parse(bad);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(c.status().message(), HasSubstr("default country entry")) << bad;
  }
  EXPECT_THAT(DefaultCountries::Parse("acme=XX").status().message(), HasSubstr("US"));
}

// ---------------------------------------------------------------------------------------------
// National numbers with a default country

TEST(NationalPhoneTest, NorthAmericanNumbersWithOrWithoutTheTrunkPrefix) {
  const PhoneCountry* us = Country("US");
  EXPECT_EQ(Phone("(415) 555-0100", us), "14155550100");
  EXPECT_EQ(Phone("415.555.0100", us), "14155550100");
  EXPECT_EQ(Phone("1 (415) 555-0100", us), "14155550100");
  EXPECT_EQ(Phone("+1 415 555 0100", us), "14155550100");
  EXPECT_EQ(Phone("14155550100", us), "14155550100");
  EXPECT_EQ(Phone("011 44 20 7946 0958", us), "442079460958");  // dialled from the US
  EXPECT_EQ(Phone("(415) 555-0100", Country("CA")), "14155550100");
}

TEST(NationalPhoneTest, TrunkPrefixZeroIsReplacedByTheCallingCode) {
  EXPECT_EQ(Phone("020 7946 0958", Country("GB")), "442079460958");
  EXPECT_EQ(Phone("07700 900123", Country("GB")), "447700900123");
  EXPECT_EQ(Phone("030 1234567", Country("DE")), "49301234567");
  EXPECT_EQ(Phone("0151 1234 5678", Country("DE")), "4915112345678");
  EXPECT_EQ(Phone("06 12 34 56 78", Country("FR")), "33612345678");
  EXPECT_EQ(Phone("02 9876 5432", Country("AU")), "61298765432");
  EXPECT_EQ(Phone("0011 44 20 7946 0958", Country("AU")), "442079460958");
}

TEST(NationalPhoneTest, CountriesWithoutATrunkPrefix) {
  EXPECT_EQ(Phone("612 345 678", Country("ES")), "34612345678");
  EXPECT_EQ(Phone("32 12 34 56", Country("DK")), "4532123456");
  EXPECT_EQ(Phone("98765 43210", Country("IN")), "919876543210");
  EXPECT_EQ(Phone("098765 43210", Country("IN")), "919876543210");
}

TEST(NationalPhoneTest, InternationalFormsAreKeptAsWithoutACountry) {
  for (const PhoneCountry& c : PhoneCountries()) {
    SCOPED_TRACE(c.iso);
    EXPECT_EQ(Phone("+1 (415) 555-0100", &c), "14155550100");
    EXPECT_EQ(Phone("0044 20 7946 0958", &c), "442079460958");
    EXPECT_EQ(Phone("+49 151 1234 5678", &c), "4915112345678");
  }
  // Without '+', a number that is not a national one of the country, with its calling code.
  EXPECT_EQ(Phone("14155550100", Country("GB")), "14155550100");
  EXPECT_EQ(Phone("442079460958", Country("US")), "442079460958");
  EXPECT_EQ(Phone("4532123456", Country("DK")), "4532123456");
  EXPECT_EQ(Phone("34612345678", Country("ES")), "34612345678");
}

TEST(NationalPhoneTest, NormalizingTwiceWithTheSameCountryChangesNothing) {
  for (const PhoneCountry& c : PhoneCountries()) {
    SCOPED_TRACE(c.iso);
    std::string national = std::string(c.trunk_prefix) + std::string(c.max_digits, '5');
    std::string once = Phone(national, &c);
    ASSERT_FALSE(absl::StartsWith(once, "<error")) << once;
    EXPECT_EQ(once, absl::StrCat(c.calling_code, std::string(c.max_digits, '5')));
    EXPECT_EQ(Phone(once, &c), once);
    EXPECT_EQ(Phone(absl::StrCat("+", once)), once);  // as returned, with '+', anywhere
  }
}

TEST(NationalPhoneTest, NotANationalNumberOfTheCountryIsRefusedNotGuessed) {
  // GB numbers are 9-10 digits after the 0: neither a GB number nor one with a country code.
  EXPECT_EQ(PhoneError("0123 45", Country("GB")).code(), absl::StatusCode::kInvalidArgument);
  // A North American national number where the default is GB.
  absl::Status st = PhoneError("(415) 555-0100", Country("GB"));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(st.message(), "customer.identifier.value: ")) << st;
}

// ---------------------------------------------------------------------------------------------
// Without a default country

TEST(NationalPhoneTest, WithoutACountryNationalFormsAreInvalidNamingTheField) {
  for (absl::string_view national :
       {"(415) 555-0100", "415-555-0100", "4155550100", "020 7946 0958", "07700 900123",
        "06 12 34 56 78", "0151 1234 5678"}) {
    absl::Status st = PhoneError(national);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << national;
    EXPECT_TRUE(absl::StartsWith(st.message(), "customer.identifier.value: ")) << st;
    EXPECT_THAT(st.message(), HasSubstr("default country")) << st;
  }
}

TEST(NationalPhoneTest, WithoutACountryInternationalFormsWorkAsBefore) {
  EXPECT_EQ(Phone("+1 (415) 555-0100"), "14155550100");
  EXPECT_EQ(Phone("14155550100"), "14155550100");
  EXPECT_EQ(Phone("1 415 555 0100"), "14155550100");
  EXPECT_EQ(Phone("0014155550100"), "14155550100");
  EXPECT_EQ(Phone("442079460958"), "442079460958");
  EXPECT_EQ(Phone("4915112345678"), "4915112345678");
  EXPECT_EQ(Phone("+4155550100"), "4155550100");  // written with '+': as typed
  EXPECT_EQ(Phone("1800555010"), "1800555010");   // not of the North American shape
}

TEST(NationalPhoneTest, ACountryCodeNeverStartsWithZero) {
  EXPECT_EQ(PhoneError("+0 20 7946 0958").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PhoneError("000 20 7946 0958").code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Match keys: a phone attribute typed nationally meets the linked identifier.

TEST(NationalPhoneTest, ProfilePhoneAttributeIsReadWithTheCountry) {
  v1::Profile p;
  (*p.mutable_attributes())["phone"] = "(415) 555-0100";
  EXPECT_TRUE(ProfileMatchKeys(p).empty());  // cannot be placed: no key
  std::vector<MatchKey> keys = ProfileMatchKeys(p, Country("US"));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].key, "phone:14155550100");
}

}  // namespace
}  // namespace onestory::identity
