#include "libs/common/validation.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace onestory {
namespace {

// An INVALID_ARGUMENT status whose message starts with `prefix` (the field it names).
MATCHER_P(InvalidArgumentStartingWith, prefix, "") {
  *result_listener << "status is " << arg;
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), absl::string_view(prefix));
}

// ---------------------------------------------------------------------------------------------
// ValidateTenant / ValidateCustomerId

TEST(ValidateTenantTest, AcceptsLettersDigitsUnderscoreAndDash) {
  EXPECT_TRUE(ValidateTenant("acme").ok());
  EXPECT_TRUE(ValidateTenant("Acme_Retail-EU-01").ok());
  EXPECT_TRUE(ValidateTenant("x").ok());
}

TEST(ValidateTenantTest, EmptyIsRequired) {
  EXPECT_THAT(ValidateTenant(""), InvalidArgumentStartingWith("tenant: required"));
}

TEST(ValidateTenantTest, SixtyFourCharactersIsTheLimit) {
  EXPECT_TRUE(ValidateTenant(std::string(kMaxTenantBytes, 'a')).ok());
  EXPECT_THAT(ValidateTenant(std::string(kMaxTenantBytes + 1, 'a')),
              InvalidArgumentStartingWith("tenant: longer than 64"));
}

TEST(ValidateTenantTest, RejectsKeySeparatorsAndOtherCharacters) {
  for (absl::string_view bad : {"ac{me", "ac}me", "ac:me", "ac me", "acme\n", "ac*me",
                                "caf\xc3\xa9", "a.b", "a/b", "a|b", "a%b"}) {
    EXPECT_THAT(ValidateTenant(bad), InvalidArgumentStartingWith("tenant: only letters"))
        << "tenant: " << bad;
  }
}

TEST(ValidateTenantTest, RejectsEmbeddedNul) {
  EXPECT_THAT(ValidateTenant(absl::string_view("ac\0me", 5)),
              InvalidArgumentStartingWith("tenant: "));
}

TEST(ValidateCustomerIdTest, NamesTheFieldPassedIn) {
  EXPECT_TRUE(ValidateCustomerId("customer.customer_id", "cus_01HZY").ok());
  EXPECT_THAT(ValidateCustomerId("customer.customer_id", ""),
              InvalidArgumentStartingWith("customer.customer_id: required"));
  EXPECT_THAT(ValidateCustomerId("source_customer_id", "a:b"),
              InvalidArgumentStartingWith("source_customer_id: "));
}

TEST(ValidateCustomerIdTest, SixtyFourCharactersIsTheLimit) {
  EXPECT_TRUE(ValidateCustomerId("customer_id", std::string(kMaxCustomerIdBytes, 'Z')).ok());
  EXPECT_THAT(ValidateCustomerId("customer_id", std::string(kMaxCustomerIdBytes + 1, 'Z')),
              InvalidArgumentStartingWith("customer_id: longer than 64"));
}

TEST(ValidateCustomerIdTest, RejectsKeySeparatorsAndOtherCharacters) {
  for (absl::string_view bad :
       {"{cus}", "cus}", "cus{", "acme:c:cus", "cus 1", "cus\n", "cus*", "\xe2\x82\xac", "cus\t"}) {
    EXPECT_THAT(ValidateCustomerId("customer_id", bad),
                InvalidArgumentStartingWith("customer_id: only letters"))
        << "id: " << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// ValidateToken

TEST(ValidateTokenTest, EmptyAllowedOnlyWhenAllowEmpty) {
  EXPECT_TRUE(ValidateToken("event_id", "", 128, /*allow_empty=*/true).ok());
  EXPECT_THAT(ValidateToken("event_id", "", 128, /*allow_empty=*/false),
              InvalidArgumentStartingWith("event_id: required"));
}

TEST(ValidateTokenTest, AcceptsPrintableAsciiWithoutSpaces) {
  EXPECT_TRUE(ValidateToken("f", "ev-1_x.y:z/{}|~!", 128, false).ok());
}

TEST(ValidateTokenTest, MaxBytesIsInclusive) {
  EXPECT_TRUE(ValidateToken("f", std::string(128, 'a'), 128, false).ok());
  EXPECT_THAT(ValidateToken("f", std::string(129, 'a'), 128, false),
              InvalidArgumentStartingWith("f: longer than 128 bytes"));
}

TEST(ValidateTokenTest, RejectsSpacesControlsAndNonAscii) {
  for (absl::string_view bad : {"a b", " a", "a\t", "a\nb", "a\x7f", "caf\xc3\xa9", "\x01"}) {
    EXPECT_THAT(ValidateToken("conversation_id", bad, 128, true),
                InvalidArgumentStartingWith("conversation_id: only printable ASCII"))
        << "token: " << bad;
  }
  EXPECT_THAT(ValidateToken("f", absl::string_view("a\0b", 3), 128, true),
              InvalidArgumentStartingWith("f: "));
}

// ---------------------------------------------------------------------------------------------
// ValidateText

TEST(ValidateTextTest, MaxBytesIsInclusiveAndCountsBytes) {
  EXPECT_TRUE(ValidateText("summary", std::string(1024, 'x'), 1024).ok());
  EXPECT_THAT(ValidateText("summary", std::string(1025, 'x'), 1024),
              InvalidArgumentStartingWith("summary: longer than 1024 bytes"));
  // "é" is two bytes.
  EXPECT_TRUE(ValidateText("f", "\xc3\xa9", 2).ok());
  EXPECT_THAT(ValidateText("f", "\xc3\xa9", 1), InvalidArgumentStartingWith("f: longer than"));
}

TEST(ValidateTextTest, EmptyIsValid) { EXPECT_TRUE(ValidateText("f", "", 10).ok()); }

TEST(ValidateTextTest, NewlinesTabsAndCarriageReturnsOnlyWhenAllowed) {
  for (absl::string_view s : {"a\nb", "a\r\nb", "a\tb"}) {
    EXPECT_TRUE(ValidateText("body", s, 100, /*allow_newlines=*/true).ok()) << s;
    EXPECT_THAT(ValidateText("body", s, 100, /*allow_newlines=*/false),
                InvalidArgumentStartingWith("body: holds a control character"))
        << s;
  }
}

TEST(ValidateTextTest, NewlinesAllowedByDefault) {
  EXPECT_TRUE(ValidateText("body", "line 1\nline 2", 100).ok());
}

TEST(ValidateTextTest, RejectsOtherControlCharactersEvenWithNewlinesAllowed) {
  for (absl::string_view bad : {"a\x01", "\x1b[31m", "a\x7f", "\x0b", "\x0c", "\x1f"}) {
    EXPECT_THAT(ValidateText("body", bad, 100, true),
                InvalidArgumentStartingWith("body: holds a control character"))
        << "text: " << bad;
  }
  EXPECT_THAT(ValidateText("body", absl::string_view("a\0b", 3), 100, true),
              InvalidArgumentStartingWith("body: holds a control character"));
}

TEST(ValidateTextTest, RejectsC1ControlCharacters) {
  // U+009B (CSI) can start a terminal escape sequence; U+0085 is NEL.
  EXPECT_EQ(ValidateText("f", "a\xc2\x9b" "31m", 100).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateText("f", "\xc2\x85", 100).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateText("f", "\xc2\xa0" "caf\xc3\xa9", 100).ok());  // NBSP and é are fine
}

TEST(ValidateTextTest, RejectsInvalidUtf8) {
  EXPECT_THAT(ValidateText("body", "ok \xff", 100),
              InvalidArgumentStartingWith("body: not valid UTF-8"));
  EXPECT_THAT(ValidateText("body", "\xc0\xaf", 100),
              InvalidArgumentStartingWith("body: not valid UTF-8"));
}

TEST(ValidateTextTest, ChecksWhatFollowsARunOfPrintableText) {
  EXPECT_THAT(ValidateText("body", "hello world\x7f", 100),
              InvalidArgumentStartingWith("body: holds a control character"));
  // Invalid UTF-8 is reported before a control character that comes earlier.
  EXPECT_THAT(ValidateText("body", "hello\x01 then \xff", 100),
              InvalidArgumentStartingWith("body: not valid UTF-8"));
  EXPECT_TRUE(ValidateText("body", "hello\nworld \xc3\xa9 and more ~", 100).ok());
}

TEST(ValidateTextTest, AcceptsMultilingualText) {
  EXPECT_TRUE(ValidateText("body", "Grüße, 你好, \xf0\x9f\x98\x80", 100).ok());
}

// ---------------------------------------------------------------------------------------------
// IsValidUtf8

TEST(IsValidUtf8Test, AcceptsAsciiAndEmpty) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii ~"));
  EXPECT_TRUE(IsValidUtf8(absl::string_view("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("\x7f"));
}

TEST(IsValidUtf8Test, AcceptsTwoThreeAndFourByteSequences) {
  EXPECT_TRUE(IsValidUtf8("\xc2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9"));          // é
  EXPECT_TRUE(IsValidUtf8("\xdf\xbf"));          // U+07FF, largest 2-byte
  EXPECT_TRUE(IsValidUtf8("\xe0\xa0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(IsValidUtf8("\xee\x80\x80"));      // U+E000, just above the surrogates
  EXPECT_TRUE(IsValidUtf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xf0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF, the largest code point
  EXPECT_TRUE(IsValidUtf8("a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!"));
}

TEST(IsValidUtf8Test, RejectsOverlongForms) {
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // '/' in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xc1\xbf"));          // U+007F in 2 bytes
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // NUL in 2 bytes (modified UTF-8)
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // '/' in 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xe0\x9f\xbf"));      // U+07FF in 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));  // '/' in 4 bytes
  EXPECT_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));  // U+FFFF in 4 bytes
}

TEST(IsValidUtf8Test, RejectsSurrogates) {
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));              // U+D800
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));              // U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\xbd\xed\xb8\x80"));  // a CESU-8 surrogate pair
}

TEST(IsValidUtf8Test, RejectsCodePointsAboveU10FFFF) {
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(IsValidUtf8("\xf7\xbf\xbf\xbf"));          // U+1FFFFF
  EXPECT_FALSE(IsValidUtf8("\xf8\x88\x80\x80\x80"));      // 5-byte form
  EXPECT_FALSE(IsValidUtf8("\xfc\x84\x80\x80\x80\x80"));  // 6-byte form
}

TEST(IsValidUtf8Test, RejectsTruncatedSequences) {
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xe2"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x98"));
  EXPECT_FALSE(IsValidUtf8("abc\xf0\x9f"));
  EXPECT_FALSE(
      IsValidUtf8("\xc3"
                  "a"));  // lead byte followed by ASCII
  EXPECT_FALSE(
      IsValidUtf8("\xe2\x82"
                  "a"));
}

TEST(IsValidUtf8Test, RejectsStrayContinuationAndInvalidBytes) {
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("a\xbf"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xfe"));
  EXPECT_FALSE(IsValidUtf8("\xc3\xa9\xa9"));  // one continuation byte too many
}

// ---------------------------------------------------------------------------------------------
// NewRandomId

constexpr absl::string_view kCrockfordLower = "0123456789abcdefghjkmnpqrstvwxyz";

TEST(NewRandomIdTest, IsPrefixFollowedByTwentySixBase32Characters) {
  for (absl::string_view prefix : {"cus_", "ev_", ""}) {
    std::string id = NewRandomId(prefix);
    ASSERT_EQ(id.size(), prefix.size() + 26) << id;
    EXPECT_TRUE(absl::StartsWith(id, prefix)) << id;
    for (char c : id.substr(prefix.size())) {
      EXPECT_NE(kCrockfordLower.find(c), absl::string_view::npos) << "'" << c << "' in " << id;
    }
  }
}

TEST(NewRandomIdTest, ThousandIdsAreDistinctAndUseTheWholeAlphabet) {
  absl::flat_hash_set<std::string> ids;
  absl::flat_hash_set<char> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRandomId("x_");
    EXPECT_TRUE(ids.insert(id).second) << "duplicate " << id;
    for (char c : id.substr(2)) seen.insert(c);
  }
  EXPECT_EQ(ids.size(), 1000u);
  // 26,000 random characters: every one of the 32 symbols shows up.
  EXPECT_EQ(seen.size(), kCrockfordLower.size());
}

TEST(NewRandomIdTest, IdsAreValidTokensAndCustomerIds) {
  std::string id = NewRandomId("cus_");
  EXPECT_TRUE(ValidateCustomerId("customer_id", id).ok());
  EXPECT_TRUE(ValidateToken("event_id", id, 128, false).ok());
}

}  // namespace
}  // namespace onestory
