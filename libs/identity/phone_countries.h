// Default countries for phone numbers written in national format: "(415) 555-0100" in a tenant
// whose default country is US is the phone 14155550100, the same as "+1 415 555 0100".
//
//   ASSIGN_OR_RETURN(DefaultCountries countries, DefaultCountries::Parse("acme=US;*=GB"));
//   const PhoneCountry* country = countries.For("acme");  // US; nullptr when none applies
//   NormalizeIdentifier("identifier", id, country);        // normalize.h
//
// The countries OneStory knows are a small explicit table (PhoneCountries(), listed in
// README.md): what normalization needs of each is its calling code, its national trunk prefix
// (the leading 0 of "020 7946 0958"), the length of its national numbers and the prefix its
// callers dial abroad. It is not a numbering plan: a national number of the right length is
// taken as it is, whatever its digits (only North American ones must start with 2-9).
// libphonenumber would know every country's plan, but the question here is only "which
// calling code goes in front", which the table answers exactly for its countries, without a
// dependency (and its metadata updates) in every binary. Thread-safe (immutable).
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace onestory::identity {

struct PhoneCountry {
  absl::string_view iso;           // ISO 3166-1 alpha-2: "US"
  absl::string_view calling_code;  // "1"
  // Dialled before a national number inside the country, dropped with the calling code in
  // front: "0" (most of Europe), "1" (North America), "" (none: Spain, Denmark, ...).
  absl::string_view trunk_prefix;
  // Digits of a national number without the trunk prefix (the national significant number).
  int min_digits = 0;
  int max_digits = 0;
  // National numbers are commonly written without the trunk prefix too ("415 555 0100" as well
  // as "1 415 555 0100"); a country without a trunk prefix is always written so.
  bool trunk_optional = false;
  // The digits a national number may start with, when that is fixed ("23456789" for an area
  // code of North America); empty: any.
  absl::string_view first_digits;
  // What callers in the country dial before a calling code, besides "+" and "00" (which are
  // read everywhere): "011" in North America, "0011" in Australia, "010" in Japan; "" when
  // it is "00".
  absl::string_view international_prefix;
};

// Every country of the table, in ISO code order.
absl::Span<const PhoneCountry> PhoneCountries();

// The country with this ISO code (case-insensitive), or nullptr when the table lacks it.
const PhoneCountry* FindPhoneCountry(absl::string_view iso);

// The default country of each tenant ("*": every tenant not named).
class DefaultCountries {
 public:
  DefaultCountries() = default;

  // "acme=US;*=GB": ';'-separated <tenant or *>=<ISO code>; whitespace ignored; "" is none.
  // INVALID_ARGUMENT naming the entry for a malformed one, an invalid tenant, a country the
  // table lacks (listing the ones it has), or a tenant named twice.
  static absl::StatusOr<DefaultCountries> Parse(absl::string_view spec);

  // The tenant's default country, the "*" one when it has none of its own; nullptr when
  // neither is set.
  const PhoneCountry* For(absl::string_view tenant) const;

  bool empty() const { return by_tenant_.empty() && every_tenant_ == nullptr; }

 private:
  absl::flat_hash_map<std::string, const PhoneCountry*> by_tenant_;
  const PhoneCountry* every_tenant_ = nullptr;
};

}  // namespace onestory::identity
