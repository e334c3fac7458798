#include "libs/identity/normalize.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onestory/v1/common.pb.h"

namespace onestory::identity {
namespace {

// An INVALID_ARGUMENT status whose message starts with `prefix` (the field it names).
MATCHER_P(InvalidArgumentStartingWith, prefix, "") {
  *result_listener << "status is " << arg;
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), absl::string_view(prefix));
}

v1::Identifier Id(v1::IdentifierType type, absl::string_view value) {
  v1::Identifier id;
  id.set_type(type);
  id.set_value(std::string(value));
  return id;
}

// The normalized value, or "<error: ...>" so a failing expectation shows why.
std::string Normalized(v1::IdentifierType type, absl::string_view value) {
  absl::StatusOr<v1::Identifier> out = NormalizeIdentifier("identifier", Id(type, value));
  if (!out.ok()) return absl::StrCat("<error: ", out.status().ToString(), ">");
  EXPECT_EQ(out->type(), type);
  return out->value();
}

absl::Status NormalizeError(v1::IdentifierType type, absl::string_view value,
                            absl::string_view field = "identifier") {
  return NormalizeIdentifier(field, Id(type, value)).status();
}

constexpr v1::IdentifierType kPhone = v1::IDENTIFIER_TYPE_PHONE;
constexpr v1::IdentifierType kEmail = v1::IDENTIFIER_TYPE_EMAIL;
constexpr v1::IdentifierType kAppUser = v1::IDENTIFIER_TYPE_APP_USER_ID;
constexpr v1::IdentifierType kDevice = v1::IDENTIFIER_TYPE_DEVICE_ID;
constexpr v1::IdentifierType kChat = v1::IDENTIFIER_TYPE_CHAT_SESSION;
constexpr v1::IdentifierType kLoyalty = v1::IDENTIFIER_TYPE_LOYALTY_ID;
constexpr v1::IdentifierType kSocial = v1::IDENTIFIER_TYPE_SOCIAL_HANDLE;
constexpr v1::IdentifierType kCrm = v1::IDENTIFIER_TYPE_CRM_ID;
constexpr v1::IdentifierType kAllTypes[] = {kPhone, kEmail,   kAppUser, kDevice,
                                            kChat,  kLoyalty, kSocial,  kCrm};

// ---------------------------------------------------------------------------------------------
// Type

TEST(NormalizeIdentifierTest, UnspecifiedTypeIsRejectedNamingTheTypeField) {
  EXPECT_THAT(NormalizeError(v1::IDENTIFIER_TYPE_UNSPECIFIED, "14155550100"),
              InvalidArgumentStartingWith("identifier.type: "));
}

TEST(NormalizeIdentifierTest, OutOfRangeTypeIsRejectedNamingTheTypeField) {
  EXPECT_THAT(NormalizeError(static_cast<v1::IdentifierType>(99), "14155550100"),
              InvalidArgumentStartingWith("identifier.type: "));
  EXPECT_THAT(NormalizeError(static_cast<v1::IdentifierType>(-1), "x"),
              InvalidArgumentStartingWith("identifier.type: "));
}

TEST(NormalizeIdentifierTest, ErrorsNameTheFieldPassedIn) {
  EXPECT_THAT(NormalizeError(kPhone, "abc", "customer.identifier"),
              InvalidArgumentStartingWith("customer.identifier.value: "));
  EXPECT_THAT(NormalizeError(v1::IDENTIFIER_TYPE_UNSPECIFIED, "abc", "identifiers[2]"),
              InvalidArgumentStartingWith("identifiers[2].type: "));
}

// ---------------------------------------------------------------------------------------------
// Values every type shares

TEST(NormalizeIdentifierTest, EmptyOrWhitespaceOnlyValueIsRequired) {
  for (v1::IdentifierType type : kAllTypes) {
    for (absl::string_view blank : {"", " ", "   ", "\t", " \t\r\n "}) {
      EXPECT_THAT(NormalizeError(type, blank),
                  InvalidArgumentStartingWith("identifier.value: required"))
          << "type " << type << " value \"" << blank << "\"";
    }
  }
}

TEST(NormalizeIdentifierTest, InvalidUtf8IsRejectedForEveryType) {
  for (v1::IdentifierType type : kAllTypes) {
    EXPECT_THAT(NormalizeError(type, "\xff"),
                InvalidArgumentStartingWith("identifier.value: not valid UTF-8"))
        << "type " << type;
    EXPECT_THAT(NormalizeError(type, "ann\xc0\xaf@example.com"),
                InvalidArgumentStartingWith("identifier.value: "))
        << "type " << type;
  }
}

TEST(NormalizeIdentifierTest, ControlCharactersAreRejectedForEveryType) {
  for (v1::IdentifierType type : kAllTypes) {
    EXPECT_THAT(NormalizeError(type, "a\nb"), InvalidArgumentStartingWith("identifier.value: "))
        << "type " << type;
    EXPECT_THAT(NormalizeError(type,
                               "a\x01"
                               "b@example.com"),
                InvalidArgumentStartingWith("identifier.value: "))
        << "type " << type;
    EXPECT_THAT(NormalizeError(type,
                               "a\x7f"
                               "b@example.com"),
                InvalidArgumentStartingWith("identifier.value: "))
        << "type " << type;
    EXPECT_THAT(NormalizeError(type, std::string("a\0b@example.com", 15)),
                InvalidArgumentStartingWith("identifier.value: "))
        << "type " << type;
  }
}

TEST(NormalizeIdentifierTest, ControlCharactersInKeptAsTypedValues) {
  for (v1::IdentifierType type : {kAppUser, kChat, kCrm, kDevice, kLoyalty, kSocial}) {
    EXPECT_THAT(NormalizeError(type, "a\tb"),
                InvalidArgumentStartingWith("identifier.value: holds a control character"))
        << "type " << type;
  }
}

TEST(NormalizeIdentifierTest, TwoHundredFiftySixBytesIsTheLimit) {
  for (v1::IdentifierType type : {kAppUser, kDevice, kChat, kLoyalty, kSocial, kCrm}) {
    std::string at_limit(kMaxIdentifierBytes, 'a');
    absl::StatusOr<v1::Identifier> ok = NormalizeIdentifier("identifier", Id(type, at_limit));
    ASSERT_TRUE(ok.ok()) << "type " << type << ": " << ok.status();
    EXPECT_EQ(ok->value().size(), kMaxIdentifierBytes);

    EXPECT_THAT(NormalizeError(type, std::string(kMaxIdentifierBytes + 1, 'a')),
                InvalidArgumentStartingWith("identifier.value: longer than 256"))
        << "type " << type;
    EXPECT_THAT(NormalizeError(type, std::string(100000, 'a')),
                InvalidArgumentStartingWith("identifier.value: longer than 256"))
        << "type " << type;
  }
}

TEST(NormalizeIdentifierTest, TheLimitAppliesAfterTrimming) {
  std::string padded = absl::StrCat("  ", std::string(kMaxIdentifierBytes, 'a'), "  ");
  EXPECT_EQ(Normalized(kCrm, padded), std::string(kMaxIdentifierBytes, 'a'));
}

TEST(NormalizeIdentifierTest, MultiByteCharactersCountAsBytes) {
  // 128 x "é" is 256 bytes; 129 is 258.
  std::string at_limit;
  for (int i = 0; i < 128; ++i) at_limit += "\xc3\xa9";
  EXPECT_EQ(Normalized(kAppUser, at_limit), at_limit);
  EXPECT_THAT(NormalizeError(kAppUser, at_limit + "\xc3\xa9"),
              InvalidArgumentStartingWith("identifier.value: longer than 256"));
}

TEST(NormalizeIdentifierTest, OutputKeepsTheType) {
  absl::StatusOr<v1::Identifier> out = NormalizeIdentifier("identifier", Id(kCrm, " X-1 "));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->type(), kCrm);
  EXPECT_EQ(out->value(), "X-1");
}

// ---------------------------------------------------------------------------------------------
// PHONE

TEST(NormalizePhoneTest, DropsEverythingButDigits) {
  EXPECT_EQ(Normalized(kPhone, "+1 (415) 555-0100"), "14155550100");
  EXPECT_EQ(Normalized(kPhone, "14155550100"), "14155550100");
  EXPECT_EQ(Normalized(kPhone, "1.415.555.0100"), "14155550100");
  EXPECT_EQ(Normalized(kPhone, "  +44 20\t7946 0958 "), "442079460958");
}

TEST(NormalizePhoneTest, TypedDifferentlyIsTheSamePhone) {
  EXPECT_EQ(Normalized(kPhone, "+1 (415) 555-0100"), Normalized(kPhone, "14155550100"));
  EXPECT_EQ(Normalized(kPhone, "0014155550100"), Normalized(kPhone, "+1 415 555 0100"));
}

TEST(NormalizePhoneTest, LeadingZeroZeroInternationalPrefixIsDropped) {
  EXPECT_EQ(Normalized(kPhone, "0014155550100"), "14155550100");
  EXPECT_EQ(Normalized(kPhone, "00 44 20 7946 0958"), "442079460958");
  EXPECT_EQ(Normalized(kPhone, "+00 44 20 7946 0958"), "442079460958");
}

TEST(NormalizePhoneTest, RejectsLetters) {
  for (absl::string_view bad :
       {"1415555CALL", "+1 415 555 0100 ext 12", "phone", "1415555010O", "14155550100x"}) {
    EXPECT_THAT(NormalizeError(kPhone, bad), InvalidArgumentStartingWith("identifier.value: "))
        << bad;
  }
}

TEST(NormalizePhoneTest, RejectsOtherSymbols) {
  for (absl::string_view bad : {"1415*5550100", "1415#5550100", "1415/555/0100", "1415:5550100",
                                "\xef\xbc\x91\xef\xbc\x94\xef\xbc\x91\xef\xbc\x95\xef\xbc\x95\xef"
                                "\xbc\x95\xef\xbc\x95"}) {  // full-width digits
    EXPECT_THAT(NormalizeError(kPhone, bad), InvalidArgumentStartingWith("identifier.value: "))
        << bad;
  }
}

TEST(NormalizePhoneTest, SevenToFifteenDigits) {
  EXPECT_EQ(Normalized(kPhone, "1234567"), "1234567");
  EXPECT_EQ(Normalized(kPhone, "123456789012345"), "123456789012345");
  EXPECT_THAT(NormalizeError(kPhone, "123456"),
              InvalidArgumentStartingWith("identifier.value: a phone number with country code"));
  EXPECT_THAT(NormalizeError(kPhone, "1234567890123456"),
              InvalidArgumentStartingWith("identifier.value: a phone number with country code"));
}

TEST(NormalizePhoneTest, DigitCountIsTakenAfterDroppingTheZeroZeroPrefix) {
  // 17 digits typed, 15 after "00": fine. 8 typed, 6 after "00": too few.
  EXPECT_EQ(Normalized(kPhone, "00123456789012345"), "123456789012345");
  EXPECT_THAT(NormalizeError(kPhone, "00123456"),
              InvalidArgumentStartingWith("identifier.value: "));
}

TEST(NormalizePhoneTest, PunctuationOnlyIsRejected) {
  EXPECT_THAT(NormalizeError(kPhone, "+ ( ) - ."),
              InvalidArgumentStartingWith("identifier.value: "));
}

// ---------------------------------------------------------------------------------------------
// EMAIL

TEST(NormalizeEmailTest, TrimmedAndLowerCased) {
  EXPECT_EQ(Normalized(kEmail, " Ann@Example.COM"), "ann@example.com");
  EXPECT_EQ(Normalized(kEmail, "ann@example.com"), "ann@example.com");
  EXPECT_EQ(Normalized(kEmail, "\tANN.Lee+Tag@Mail.Example.CO.UK \n"),
            "ann.lee+tag@mail.example.co.uk");
}

TEST(NormalizeEmailTest, RejectsMissingOrRepeatedAt) {
  for (absl::string_view bad :
       {"ann.example.com", "ann@@example.com", "ann@ex@ample.com", "@example.com", "ann"}) {
    EXPECT_THAT(NormalizeError(kEmail, bad), InvalidArgumentStartingWith("identifier.value: "))
        << bad;
  }
}

TEST(NormalizeEmailTest, RejectsADomainWithoutADot) {
  for (absl::string_view bad :
       {"ann@localhost", "ann@", "ann@.", "ann@.com", "ann@example.", "ann@example"}) {
    EXPECT_THAT(NormalizeError(kEmail, bad), InvalidArgumentStartingWith("identifier.value: "))
        << bad;
  }
}

TEST(NormalizeEmailTest, RejectsSpacesInside) {
  for (absl::string_view bad :
       {"ann lee@example.com", "ann@exa mple.com", "ann@example.com x", "ann\t@example.com"}) {
    EXPECT_THAT(NormalizeError(kEmail, bad), InvalidArgumentStartingWith("identifier.value: "))
        << bad;
  }
}

TEST(NormalizeEmailTest, TwoHundredFiftyFourBytesIsTheLimit) {
  const std::string domain = "@example.com";
  std::string at_limit = std::string(kMaxEmailBytes - domain.size(), 'a') + domain;
  ASSERT_EQ(at_limit.size(), kMaxEmailBytes);
  EXPECT_EQ(Normalized(kEmail, at_limit), at_limit);
  EXPECT_THAT(NormalizeError(kEmail, "a" + at_limit),
              InvalidArgumentStartingWith("identifier.value: "));
}

// ---------------------------------------------------------------------------------------------
// DEVICE_ID, APP_USER_ID, CHAT_SESSION, CRM_ID

TEST(NormalizeDeviceIdTest, TrimmedAndLowerCased) {
  EXPECT_EQ(Normalized(kDevice, " 3F2504E0-4F89-11D3-9A0C-0305E82C3301 "),
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
}

TEST(NormalizeKeptAsTypedTest, TrimmedAndCaseKept) {
  EXPECT_EQ(Normalized(kAppUser, "  User-ABC "), "User-ABC");
  EXPECT_EQ(Normalized(kChat, "Sess:1 2"), "Sess:1 2");
  EXPECT_EQ(Normalized(kCrm, "\tSF-0061x00000AbCdE\n"), "SF-0061x00000AbCdE");
}

TEST(NormalizeKeptAsTypedTest, AnyPrintableCharacterIsKept) {
  // Values become key parts only after encoding, so hostile characters are fine here.
  EXPECT_EQ(Normalized(kAppUser, "a{b}:c*%d"), "a{b}:c*%d");
  EXPECT_EQ(Normalized(kCrm, "Grüße"), "Grüße");
}

// ---------------------------------------------------------------------------------------------
// LOYALTY_ID

TEST(NormalizeLoyaltyIdTest, SpacesAndDashesDroppedAndUpperCased) {
  EXPECT_EQ(Normalized(kLoyalty, "ab-12 34"), "AB1234");
  EXPECT_EQ(Normalized(kLoyalty, " AB1234 "), "AB1234");
  EXPECT_EQ(Normalized(kLoyalty, "a-b-1-2-3-4"), "AB1234");
}

TEST(NormalizeLoyaltyIdTest, OnlyDashesIsRequired) {
  EXPECT_THAT(NormalizeError(kLoyalty, " - -- "),
              InvalidArgumentStartingWith("identifier.value: required"));
}

// ---------------------------------------------------------------------------------------------
// SOCIAL_HANDLE

TEST(NormalizeSocialHandleTest, LowerCasedAndLeadingAtDropped) {
  EXPECT_EQ(Normalized(kSocial, "@Ann"), "ann");
  EXPECT_EQ(Normalized(kSocial, "Ann"), "ann");
  EXPECT_EQ(Normalized(kSocial, " @@Ann "), "ann");
}

TEST(NormalizeSocialHandleTest, AtDroppedFromTheHandlePartOfNetworkHandle) {
  EXPECT_EQ(Normalized(kSocial, "twitter:@Ann"), "twitter:ann");
  EXPECT_EQ(Normalized(kSocial, "Twitter:Ann"), "twitter:ann");
  EXPECT_EQ(Normalized(kSocial, "twitter:@Ann"), Normalized(kSocial, "TWITTER:ann"));
}

TEST(NormalizeSocialHandleTest, AtInsideTheHandleIsKept) {
  EXPECT_EQ(Normalized(kSocial, "mastodon:ann@social.example"), "mastodon:ann@social.example");
}

TEST(NormalizeSocialHandleTest, OnlyAtIsRequired) {
  EXPECT_THAT(NormalizeError(kSocial, "@"),
              InvalidArgumentStartingWith("identifier.value: required"));
}

// Found by tests/fuzz/fuzz_key_encoding: a normalized value normalizes to itself, so a client
// that sends back what it was given reaches the same index key.
TEST(NormalizeIdentifierTest, NormalizingTwiceChangesNothing) {
  EXPECT_EQ(Normalized(kPhone, "0000 4420 7946 0958"), "442079460958");
  EXPECT_EQ(Normalized(kPhone, "442079460958"), "442079460958");
  EXPECT_EQ(Normalized(kSocial, "@ Ann"), "ann");
  EXPECT_EQ(Normalized(kSocial, "x: @ann"), "x:ann");
  EXPECT_EQ(Normalized(kSocial, "ann"), "ann");
  EXPECT_EQ(NormalizeError(kSocial, "@   @@@").code(), absl::StatusCode::kInvalidArgument);
  for (auto [type, raw] :
       std::vector<std::pair<v1::IdentifierType, std::string>>{{kPhone, "00 00 1 415 555 0100"},
                                                               {kSocial, "TW:@@ Ann"},
                                                               {kEmail, " Ann@Example.COM"},
                                                               {kLoyalty, "ab-12 34"},
                                                               {kDevice, " ABC "}}) {
    std::string once = Normalized(type, raw);
    EXPECT_EQ(Normalized(type, once), once) << raw;
  }
}

}  // namespace
}  // namespace onestory::identity
