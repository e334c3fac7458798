#include "libs/privacy/redactor.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/common/validation.h"

namespace onestory::privacy {
namespace {

// An INVALID_ARGUMENT status whose message starts with `prefix`.
MATCHER_P(InvalidArgumentStartingWith, prefix, "") {
  *result_listener << "status is " << arg;
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), absl::string_view(prefix));
}

// A redactor with no configured patterns: cards only.
Redactor CardsOnly() {
  absl::StatusOr<Redactor> redactor = Redactor::Create({});
  EXPECT_TRUE(redactor.ok()) << redactor.status();
  return *std::move(redactor);
}

Redactor WithPatterns(std::vector<RedactionPattern> patterns) {
  absl::StatusOr<Redactor> redactor = Redactor::Create(std::move(patterns));
  EXPECT_TRUE(redactor.ok()) << redactor.status();
  return *std::move(redactor);
}

const std::vector<RedactionPattern> kIbanAndSsn = {
    {"iban", R"(\bDE\d{20}\b)"},
    {"ssn", R"(\b\d{3}-\d{2}-\d{4}\b)"},
};

// ---------------------------------------------------------------------------------------------
// LuhnValid

TEST(LuhnValidTest, AcceptsTestCardNumbers) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));     // Visa
  EXPECT_TRUE(LuhnValid("5500005555555559"));     // Mastercard
  EXPECT_TRUE(LuhnValid("378282246310005"));      // Amex
  EXPECT_TRUE(LuhnValid("4222222222222"));        // 13-digit Visa
  EXPECT_TRUE(LuhnValid("6011000990139424009"));  // 19 digits
}

TEST(LuhnValidTest, RejectsWrongCheckDigitSeparatorsAndEmpty) {
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_FALSE(LuhnValid("4111 1111 1111 1111"));
  EXPECT_FALSE(LuhnValid("4111-1111-1111-1111"));
  EXPECT_FALSE(LuhnValid(""));
}

// ---------------------------------------------------------------------------------------------
// Cards

TEST(MaskCardsTest, SpaceGroupedCardInAChatMessage) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("my card is 4111 1111 1111 1111 exp 12/27", &count),
            "my card is **** **** **** 1111 exp 12/27");
  EXPECT_EQ(count, 1);
}

TEST(MaskCardsTest, DashGroupedCardKeepsTheDashes) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("4111-1111-1111-1111", &count), "****-****-****-1111");
  EXPECT_EQ(count, 1);
}

TEST(MaskCardsTest, UngroupedMastercard) {
  EXPECT_EQ(CardsOnly().Mask("mc 5500005555555559 thanks"), "mc ************5559 thanks");
}

TEST(MaskCardsTest, AmexFifteenDigitsPlainAndGrouped) {
  EXPECT_EQ(CardsOnly().Mask("amex 378282246310005"), "amex ***********0005");
  EXPECT_EQ(CardsOnly().Mask("amex 3782 822463 10005"), "amex **** ****** *0005");
}

TEST(MaskCardsTest, ThirteenAndNineteenDigitsAreCardsTwelveAndTwentyAreNot) {
  EXPECT_EQ(CardsOnly().Mask("old visa 4222222222222"), "old visa *********2222");
  EXPECT_EQ(CardsOnly().Mask("long 6011000990139424009"), "long ***************4009");
  int count = -1;
  // 12 digits and 20 digits: both pass Luhn, neither is a card length.
  EXPECT_EQ(CardsOnly().Mask("a 411111111117 b 41111111111111111115", &count),
            "a 411111111117 b 41111111111111111115");
  EXPECT_EQ(count, 0);
}

TEST(MaskCardsTest, LuhnFailingNumberIsLeftAlone) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("card 4111 1111 1111 1112 declined", &count),
            "card 4111 1111 1111 1112 declined");
  EXPECT_EQ(count, 0);
}

TEST(MaskCardsTest, OrderNumbersAreLeftAlone) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("where is ORD-2024-000123456?", &count),
            "where is ORD-2024-000123456?");
  EXPECT_EQ(count, 0);
  // These digits pass Luhn, but the '-' joins them to "ORD": an id, not a card.
  EXPECT_EQ(CardsOnly().Mask("where is ORD-2024-000123495?", &count),
            "where is ORD-2024-000123495?");
  EXPECT_EQ(count, 0);
}

TEST(MaskCardsTest, PhoneNumberIsLeftAlone) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("call me at +1 415 555 0100 tomorrow", &count),
            "call me at +1 415 555 0100 tomorrow");
  EXPECT_EQ(count, 0);
}

TEST(MaskCardsTest, CardInsideALongerDigitRunIsLeftAlone) {
  int count = -1;
  // A 24-digit reference holding 4111111111111111; and the same card continued by a group.
  EXPECT_EQ(CardsOnly().Mask("ref 000041111111111111111000 ok", &count),
            "ref 000041111111111111111000 ok");
  EXPECT_EQ(count, 0);
  EXPECT_EQ(CardsOnly().Mask("ref 4111 1111 1111 1111 2222", &count),
            "ref 4111 1111 1111 1111 2222");
  EXPECT_EQ(count, 0);
}

TEST(MaskCardsTest, CardGluedToLettersIsLeftAlone) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("id x4111111111111111 and 4111111111111111y", &count),
            "id x4111111111111111 and 4111111111111111y");
  EXPECT_EQ(count, 0);
}

TEST(MaskCardsTest, TwoCardsInOneText) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("use 4111111111111111, or else 5500-0000-0000-0004.", &count),
            "use ************1111, or else ****-****-****-0004.");
  EXPECT_EQ(count, 2);
}

TEST(MaskCardsTest, CardAtStartAndEndOfText) {
  EXPECT_EQ(CardsOnly().Mask("4111111111111111"), "************1111");
  EXPECT_EQ(CardsOnly().Mask("4111111111111111 is mine"), "************1111 is mine");
  EXPECT_EQ(CardsOnly().Mask("mine is 4111 1111 1111 1111"), "mine is **** **** **** 1111");
}

TEST(MaskCardsTest, Utf8AroundACardStaysIntact) {
  int count = -1;
  std::string masked = CardsOnly().Mask("Karte: 4111111111111111 — danke", &count);
  EXPECT_EQ(masked, "Karte: ************1111 — danke");
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(IsValidUtf8(masked));
  EXPECT_EQ(CardsOnly().Mask("カード4111111111111111です"), "カード************1111です");
}

TEST(MaskCardsTest, TextWithoutCardsIsReturnedUnchanged) {
  int count = -1;
  EXPECT_EQ(CardsOnly().Mask("", &count), "");
  EXPECT_EQ(count, 0);
  EXPECT_EQ(CardsOnly().Mask("order 12 of 2024, room 101, 99 bottles", &count),
            "order 12 of 2024, room 101, 99 bottles");
  EXPECT_EQ(count, 0);
  EXPECT_EQ(CardsOnly().Mask("no count wanted 4111111111111111"),
            "no count wanted ************1111");
}

// MaskIfAny counts a text's digits 8 bytes at a time before it scans: a 13-digit card must be
// found wherever it sits against the 8-byte words, whatever bytes (ASCII or not) surround it, and
// give what Mask gives; a text Mask leaves alone leaves *out alone.
TEST(MaskIfAnyTest, AgreesWithMaskAtEveryOffsetAndNeighbourByte) {
  const Redactor redactor = CardsOnly();
  const std::string card = "4222222222222";  // 13 digits, Luhn-valid
  for (size_t offset = 0; offset <= 17; ++offset) {
    for (int b = 0; b < 256; ++b) {
      const char c = static_cast<char>(b);
      std::string text(offset, c);
      text += ' ';
      text += card;
      text += ' ';
      text.append(offset % 5, c);
      int want = 0;
      const std::string masked = redactor.Mask(text, &want);
      std::string out = "untouched";
      ASSERT_EQ(redactor.MaskIfAny(text, &out), want) << offset << " " << b;
      EXPECT_EQ(out, want > 0 ? masked : "untouched") << offset << " " << b;
      if (b < '0' || b > '9') {  // a digit beside it joins the run
        EXPECT_EQ(want, 1) << offset << " " << b;
      }
    }
  }
}

// CountDigits reads 8 bytes at a time and the rest one by one: every byte value at every
// position of texts of 0 to 24 bytes, counted against a byte-by-byte count.
TEST(CountDigitsTest, CountsExactlyTheAsciiDigits) {
  for (size_t size = 0; size <= 24; ++size) {
    for (size_t at = 0; at < std::max<size_t>(size, 1); ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string text(size, '7');
        for (size_t i = 0; i < size; i += 3) text[i] = static_cast<char>(0x80 + i);  // not digits
        if (size > 0) text[at] = static_cast<char>(b);
        size_t want = 0;
        for (char c : text) want += (c >= '0' && c <= '9') ? 1 : 0;
        ASSERT_EQ(CountDigits(text), want) << size << " " << at << " " << b;
      }
    }
  }
}

TEST(MaskIfAnyTest, FewerThanThirteenDigitsAreLeftAlone) {
  const Redactor redactor = CardsOnly();
  std::string out = "untouched";
  EXPECT_EQ(redactor.MaskIfAny("", &out), 0);
  EXPECT_EQ(redactor.MaskIfAny("order status question: where is my parcel?", &out), 0);
  EXPECT_EQ(redactor.MaskIfAny("call 555 0100 12 times \xc3\xa9\xe2\x82\xac 99", &out), 0);
  // 12 digits, with ':' and '/' (the bytes beside '0' and '9') between them.
  EXPECT_EQ(redactor.MaskIfAny("9:8/7;6.5,4 3-2_1 0a1b2", &out), 0);
  EXPECT_EQ(out, "untouched");
  // Digits spread over the text add up: the scan runs, and finds the card.
  EXPECT_EQ(redactor.MaskIfAny("1 2 3 x 4111 1111 1111 1111", &out), 1);
  EXPECT_EQ(out, "1 2 3 x **** **** **** 1111");
}

TEST(MaskIfAnyTest, PatternsAreAlwaysScanned) {
  const Redactor redactor = WithPatterns(kIbanAndSsn);
  std::string out;
  EXPECT_EQ(redactor.MaskIfAny("ssn 123-45-6789", &out), 1);  // 9 digits: below a card's 13
  EXPECT_EQ(out, "ssn [ssn]");
}

// ---------------------------------------------------------------------------------------------
// Configured patterns

TEST(MaskPatternsTest, IbanSsnAndCardInOneMessage) {
  Redactor redactor = WithPatterns(kIbanAndSsn);
  EXPECT_FALSE(redactor.empty());
  int count = -1;
  EXPECT_EQ(redactor.Mask("IBAN DE89370400440532013000, SSN 123-45-6789, card 4111 1111 1111 1111",
                          &count),
            "IBAN [iban], SSN [ssn], card **** **** **** 1111");
  EXPECT_EQ(count, 3);
}

TEST(MaskPatternsTest, EveryMatchIsCounted) {
  int count = -1;
  EXPECT_EQ(WithPatterns(kIbanAndSsn).Mask("123-45-6789 / 987-65-4321 / 555-12-0000", &count),
            "[ssn] / [ssn] / [ssn]");
  EXPECT_EQ(count, 3);
}

TEST(MaskPatternsTest, NoMatchLeavesTextUnchanged) {
  int count = -1;
  EXPECT_EQ(WithPatterns(kIbanAndSsn).Mask("DE893704 is too short, 12-345-6789 is no ssn", &count),
            "DE893704 is too short, 12-345-6789 is no ssn");
  EXPECT_EQ(count, 0);
}

TEST(MaskPatternsTest, CapturingGroupsInPatternsDoNotConfuseTheNames) {
  Redactor redactor = WithPatterns({
      {"ssn", R"(\b(\d{3})-(\d{2})-(\d{4})\b)"},
      {"email", R"((?P<user>[a-z.]+)@(example)\.com)"},
      {"zip", R"(\b\d{5}\b)"},
  });
  int count = -1;
  EXPECT_EQ(redactor.Mask("zip 94105, mail jo.doe@example.com, ssn 123-45-6789", &count),
            "zip [zip], mail [email], ssn [ssn]");
  EXPECT_EQ(count, 3);
}

TEST(MaskPatternsTest, OverlappingMatchesEarliestStartThenFirstListedWins) {
  Redactor redactor = WithPatterns({{"word", "secret"}, {"phrase", "top secret"}, {"all", "top"}});
  // "top secret" starts before "secret"; at the same start "phrase" is listed before "all".
  EXPECT_EQ(redactor.Mask("a top secret plan, a secret"), "a [phrase] plan, a [word]");
}

TEST(MaskPatternsTest, PatternsSeeTheTextWithCardsAlreadyMasked) {
  Redactor redactor = WithPatterns({{"last4", R"(\*+\d{4})"}});
  int count = -1;
  EXPECT_EQ(redactor.Mask("card 4111111111111111", &count), "card [last4]");
  EXPECT_EQ(count, 2);  // the card, then the pattern
}

TEST(MaskPatternsTest, CaseInsensitiveFlagStaysInsideItsPattern) {
  Redactor redactor = WithPatterns({{"name", "(?i)jane doe"}, {"code", "abc"}});
  EXPECT_EQ(redactor.Mask("JANE DOE abc ABC"), "[name] [code] ABC");
}

TEST(MaskPatternsTest, PatternThatCanMatchEmptyInContextOnlyReplacesRealMatches) {
  // \bx* matches "" at every word start; only the non-empty "xx" is replaced.
  int count = -1;
  std::string masked = WithPatterns({{"x", R"(\bx*)"}}).Mask("äb xx — ö", &count);
  EXPECT_EQ(masked, "äb [x] — ö");
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(IsValidUtf8(masked));
}

TEST(MaskPatternsTest, NonAsciiPatternAndText) {
  Redactor redactor = WithPatterns({{"street", R"(\p{L}+straße \d+)"}});
  EXPECT_EQ(redactor.Mask("wohne in der Hauptstraße 5 — ja"), "wohne in der [street] — ja");
}

TEST(MaskPatternsTest, CopiesShareTheCompiledPatterns) {
  Redactor original = WithPatterns(kIbanAndSsn);
  Redactor copy = original;
  EXPECT_EQ(copy.Mask("ssn 123-45-6789"), "ssn [ssn]");
  EXPECT_EQ(original.Mask("ssn 123-45-6789"), "ssn [ssn]");
  EXPECT_TRUE(CardsOnly().empty());
}

// ---------------------------------------------------------------------------------------------
// Create

TEST(CreateTest, InvalidRegexNamesThePattern) {
  absl::StatusOr<Redactor> redactor =
      Redactor::Create({{"iban", R"(\bDE\d{20}\b)"}, {"broken", R"((\d+)"}});
  EXPECT_THAT(redactor.status(),
              InvalidArgumentStartingWith("pattern \"broken\": invalid regex: missing )"));
}

TEST(CreateTest, NamesMustBeShortLowercaseTokens) {
  EXPECT_TRUE(Redactor::Create({{std::string(32, 'a'), "x"}}).ok());
  EXPECT_TRUE(Redactor::Create({{"card_cvv-2", "x"}}).ok());
  for (const char* name : {"", "IBAN", "has space", "ümlaut", "a]b"}) {
    EXPECT_THAT(Redactor::Create({{name, "x"}}).status(), InvalidArgumentStartingWith("pattern \""))
        << name;
  }
  EXPECT_THAT(Redactor::Create({{std::string(33, 'a'), "x"}}).status(),
              InvalidArgumentStartingWith("pattern \"aaaa"));
  EXPECT_THAT(Redactor::Create({{"IBAN", "x"}}).status(),
              InvalidArgumentStartingWith("pattern \"IBAN\": the name must be 1-32 characters"));
}

TEST(CreateTest, RegexMatchingTheEmptyStringIsRejected) {
  EXPECT_THAT(
      Redactor::Create({{"digits", R"(\d*)"}}).status(),
      InvalidArgumentStartingWith("pattern \"digits\": the regex matches the empty string"));
  EXPECT_THAT(Redactor::Create({{"nothing", ""}}).status(),
              InvalidArgumentStartingWith("pattern \"nothing\": the regex matches the empty"));
}

TEST(CreateTest, AnyByteEscapeIsRejectedButAnEscapedBackslashBeforeCIsFine) {
  EXPECT_THAT(Redactor::Create({{"bytes", R"(a\C+)"}}).status(),
              InvalidArgumentStartingWith("pattern \"bytes\": \\C is not allowed"));
  Redactor redactor = WithPatterns({{"path", R"(C:\\Users)"}});
  EXPECT_EQ(redactor.Mask(R"(in C:\Users\jo)"), R"(in [path]\jo)");
}

TEST(CreateTest, SameNamedGroupInTwoPatternsIsRejected) {
  EXPECT_THAT(Redactor::Create({{"a", R"((?P<id>\d{6}))"}, {"b", R"((?P<id>[a-z]{6}))"}}).status(),
              InvalidArgumentStartingWith(
                  "pattern \"b\": the named group \"id\" is also used by pattern \"a\""));
}

TEST(CreateTest, SameNameOnTwoPatternsIsAllowed) {
  Redactor redactor =
      WithPatterns({{"email", R"([a-z]+@example\.com)"}, {"email", R"([a-z]+@example\.org)"}});
  EXPECT_EQ(redactor.Mask("jo@example.com, al@example.org"), "[email], [email]");
}

// ---------------------------------------------------------------------------------------------
// ParsePatternFile

TEST(ParsePatternFileTest, ReadsNamesAndRegexesSkippingCommentsAndBlankLines) {
  absl::StatusOr<std::vector<RedactionPattern>> patterns = Redactor::ParsePatternFile(
      "# Patterns for the EU tenants.\n"
      "\n"
      "iban\t\\bDE\\d{20}\\b\n"
      "   # an indented comment\n"
      "ssn    \\b\\d{3}-\\d{2}-\\d{4}\\b   \r\n"
      "phrase  top secret\n"
      "  \t \n");
  ASSERT_TRUE(patterns.ok()) << patterns.status();
  ASSERT_EQ(patterns->size(), 3u);
  EXPECT_EQ((*patterns)[0].name, "iban");
  EXPECT_EQ((*patterns)[0].regex, R"(\bDE\d{20}\b)");
  EXPECT_EQ((*patterns)[1].name, "ssn");
  EXPECT_EQ((*patterns)[1].regex, R"(\b\d{3}-\d{2}-\d{4}\b)");
  EXPECT_EQ((*patterns)[2].name, "phrase");
  EXPECT_EQ((*patterns)[2].regex, "top secret");

  Redactor redactor = WithPatterns(*std::move(patterns));
  EXPECT_EQ(redactor.Mask("DE89370400440532013000 top secret 123-45-6789"),
            "[iban] [phrase] [ssn]");
}

TEST(ParsePatternFileTest, EmptyFileGivesNoPatterns) {
  absl::StatusOr<std::vector<RedactionPattern>> patterns =
      Redactor::ParsePatternFile("# nothing yet\n");
  ASSERT_TRUE(patterns.ok()) << patterns.status();
  EXPECT_TRUE(patterns->empty());
}

TEST(ParsePatternFileTest, LineWithoutRegexNamesTheLine) {
  EXPECT_THAT(Redactor::ParsePatternFile("# header\n\niban \\bDE\\d{20}\\b\nssn\n").status(),
              InvalidArgumentStartingWith("line 4: expected \"<name> <regex>\""));
}

TEST(ParsePatternFileTest, BadRegexOrNameNamesTheLineAndThePattern) {
  EXPECT_THAT(Redactor::ParsePatternFile("iban \\bDE\\d{20}\\b\nbroken (\\d+\n").status(),
              InvalidArgumentStartingWith("line 2: pattern \"broken\": invalid regex"));
  EXPECT_THAT(Redactor::ParsePatternFile("\n\nIBAN \\bDE\\d{20}\\b\n").status(),
              InvalidArgumentStartingWith("line 3: pattern \"IBAN\": the name must be"));
}

}  // namespace
}  // namespace onestory::privacy
