#include "libs/auth/api_keys.h"

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace onestory::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::string_view kAbcSha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr absl::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const std::vector<std::string> kAllScopeNames = {
    "timeline.write",          "timeline.read",  "context.read.bot", "context.read.agent",
    "context.read.supervisor", "identity.admin", "tenant.admin",     "privacy.admin"};

// "<id> <tenant> <scopes> sha256:<hash of key>".
std::string Line(absl::string_view id, absl::string_view tenant, absl::string_view scopes,
                 absl::string_view key) {
  return absl::StrCat(id, " ", tenant, " ", scopes, " sha256:", Sha256Hex(key));
}

// Parses `text`, expecting INVALID_ARGUMENT whose message starts with "line <n>: " and contains
// `why`.
void ExpectLineError(absl::string_view text, int line, absl::string_view why) {
  absl::StatusOr<ApiKeyTable> table = ApiKeyTable::Parse(text);
  ASSERT_FALSE(table.ok()) << "parsed:\n" << text;
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << table.status();
  EXPECT_THAT(std::string(table.status().message()), StartsWith(absl::StrCat("line ", line, ": ")))
      << text;
  EXPECT_THAT(std::string(table.status().message()), HasSubstr(std::string(why))) << text;
}

ApiKeyTable ParseOk(absl::string_view text) {
  absl::StatusOr<ApiKeyTable> table = ApiKeyTable::Parse(text);
  EXPECT_TRUE(table.ok()) << table.status() << "\n" << text;
  return table.ok() ? *std::move(table) : ApiKeyTable();
}

// ---------------------------------------------------------------------------------------------
// Sha256Hex

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex("abc"), kAbcSha256);
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256HexTest, LowerCaseHexOf64Digits) {
  std::string h = Sha256Hex("os_some-key");
  ASSERT_EQ(h.size(), 64u);
  for (char c : h) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << h;
}

TEST(Sha256HexTest, BinarySafe) {
  std::string with_nul("a\0b", 3);
  EXPECT_NE(Sha256Hex(with_nul), Sha256Hex("a"));
  EXPECT_NE(Sha256Hex(with_nul), Sha256Hex("ab"));
}

// ---------------------------------------------------------------------------------------------
// GenerateKey

TEST(GenerateKeyTest, PrefixAnd43Base64UrlCharacters) {
  for (int i = 0; i < 50; ++i) {
    std::string key = GenerateKey();
    ASSERT_TRUE(absl::StartsWith(key, "os_")) << key;
    absl::string_view body = absl::string_view(key).substr(3);
    ASSERT_EQ(body.size(), 43u) << key;
    for (char c : body) {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_')
          << "'" << c << "' in " << key;
    }
    std::string bytes;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(body, &bytes)) << key;
    EXPECT_EQ(bytes.size(), 32u) << key;  // 256 bits
  }
}

TEST(GenerateKeyTest, Distinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(GenerateKey());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(GenerateKeyTest, AcceptedByATableOfItsHash) {
  std::string key = GenerateKey();
  ApiKeyTable table = ParseOk(Line("gen", "demo", "timeline.read", key));
  const ApiKey* found = table.Find(key);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, "gen");
}

// ---------------------------------------------------------------------------------------------
// ScopeSet and ParseScopes

TEST(ScopeTest, NamesInEnumOrder) {
  ASSERT_EQ(kScopeCount, static_cast<int>(kAllScopeNames.size()));
  for (int i = 0; i < kScopeCount; ++i) {
    EXPECT_EQ(ScopeName(static_cast<Scope>(i)), kAllScopeNames[i]);
  }
  EXPECT_EQ(ScopeName(Scope::kPrivacyAdmin), "privacy.admin");
  EXPECT_EQ(ScopeName(Scope::kTimelineWrite), "timeline.write");
}

TEST(ScopeSetTest, AddHasHasAnyEmpty) {
  ScopeSet none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.ToString(), "");
  ScopeSet s = {Scope::kTimelineRead, Scope::kContextReadBot};
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(s.Has(Scope::kTimelineRead));
  EXPECT_TRUE(s.Has(Scope::kContextReadBot));
  EXPECT_FALSE(s.Has(Scope::kTimelineWrite));
  EXPECT_TRUE(s.HasAny({Scope::kTimelineWrite, Scope::kContextReadBot}));
  EXPECT_FALSE(s.HasAny({Scope::kTimelineWrite, Scope::kPrivacyAdmin}));
  EXPECT_FALSE(s.HasAny(ScopeSet()));
  EXPECT_EQ(ScopeSet::All().ToString(), absl::StrJoin(kAllScopeNames, ","));
}

TEST(ScopeSetTest, ToStringIsInScopeOrderWhateverTheParseOrder) {
  absl::StatusOr<ScopeSet> s = ParseScopes("privacy.admin,context.read.bot,timeline.write");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ToString(), "timeline.write,context.read.bot,privacy.admin");
}

TEST(ScopeSetTest, RoundTripOfEveryNonEmptySubset) {
  for (int mask = 1; mask < (1 << kScopeCount); ++mask) {
    ScopeSet set;
    for (int i = 0; i < kScopeCount; ++i) {
      if (mask & (1 << i)) set.Add(static_cast<Scope>(i));
    }
    std::string text = set.ToString();
    absl::StatusOr<ScopeSet> parsed = ParseScopes(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(parsed->ToString(), text);
    for (int i = 0; i < kScopeCount; ++i) {
      EXPECT_EQ(parsed->Has(static_cast<Scope>(i)), (mask & (1 << i)) != 0) << text;
    }
  }
}

TEST(ParseScopesTest, DuplicatesWhitespaceAndEmptyItems) {
  absl::StatusOr<ScopeSet> s = ParseScopes(" timeline.read , timeline.read,,context.read.bot ");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ToString(), "timeline.read,context.read.bot");
}

TEST(ParseScopesTest, UnknownScopeIsNamed) {
  absl::StatusOr<ScopeSet> s = ParseScopes("timeline.read,timeline.delete");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("\"timeline.delete\""));
  // Case matters: scope names are lower case.
  EXPECT_FALSE(ParseScopes("Timeline.Read").ok());
  EXPECT_FALSE(ParseScopes("all").ok());
  EXPECT_FALSE(ParseScopes("*").ok());
}

TEST(ParseScopesTest, EmptyIsAnError) {
  EXPECT_EQ(ParseScopes("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScopes(",").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScopes(" , ,").status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// ApiKeyTable::Parse

TEST(ApiKeyTableParseTest, EmptyAndCommentOnlyFilesHaveNoKeys) {
  EXPECT_EQ(ParseOk("").size(), 0u);
  EXPECT_EQ(ParseOk("\n\n   \n\t\n").size(), 0u);
  EXPECT_EQ(ParseOk("# a comment\n   # an indented comment\n#\n").size(), 0u);
}

TEST(ApiKeyTableParseTest, CommentsBlankLinesTabsAndCrLf) {
  std::string text = absl::StrCat(
      "# id  tenant  scopes  hash\n",                                            //
      "\n",                                                                      //
      Line("console-eu", "acme", "timeline.read,context.read.agent", "k1"), "\n",  //
      "   \t \n",                                                                //
      "  # indented comment sha256:", Sha256Hex("k9"), "\n",                     //
      "\tbot-1\t\tacme\tcontext.read.bot\t sha256:", Sha256Hex("k2"), "  \n",    //
      Line("admin", "other_tenant-2", ScopeSet::All().ToString(), "k3"), "\r\n",
      "# trailing comment without newline");
  ApiKeyTable table = ParseOk(text);
  EXPECT_EQ(table.size(), 3u);

  const ApiKey* k1 = table.Find("k1");
  ASSERT_NE(k1, nullptr);
  EXPECT_EQ(k1->id, "console-eu");
  EXPECT_EQ(k1->tenant, "acme");
  EXPECT_EQ(k1->scopes.ToString(), "timeline.read,context.read.agent");

  const ApiKey* k2 = table.Find("k2");
  ASSERT_NE(k2, nullptr);
  EXPECT_EQ(k2->id, "bot-1");
  EXPECT_EQ(k2->tenant, "acme");
  EXPECT_EQ(k2->scopes.ToString(), "context.read.bot");

  const ApiKey* k3 = table.Find("k3");
  ASSERT_NE(k3, nullptr);
  EXPECT_EQ(k3->id, "admin");
  EXPECT_EQ(k3->tenant, "other_tenant-2");
  EXPECT_EQ(k3->scopes.ToString(), ScopeSet::All().ToString());

  EXPECT_EQ(table.Find("k9"), nullptr);  // only in a comment
}

TEST(ApiKeyTableParseTest, LastLineWithoutNewline) {
  ApiKeyTable table = ParseOk(Line("a", "t", "timeline.write", "k"));
  EXPECT_NE(table.Find("k"), nullptr);
}

TEST(ApiKeyTableParseTest, IdsMayBeAnyPrintableAscii) {
  ApiKeyTable table = ParseOk(Line("svc:console/eu@1", "t", "timeline.write", "k"));
  ASSERT_NE(table.Find("k"), nullptr);
  EXPECT_EQ(table.Find("k")->id, "svc:console/eu@1");
}

TEST(ApiKeyTableParseTest, WrongFieldCountNamesTheLine) {
  std::string good = Line("a", "t", "timeline.read", "k1");
  // Three fields (no hash), on line 3 after a comment and a blank line.
  ExpectLineError(absl::StrCat("# keys\n\n", "b t timeline.read\n", good), 3, "4 fields");
  // Five fields: an inline comment is not a comment.
  ExpectLineError(absl::StrCat(good, "\n", Line("b", "t", "timeline.read", "k2"), " # note\n"),
                  2, "4 fields");
  // Scopes separated by ", " are two fields.
  ExpectLineError(absl::StrCat("b t timeline.read, timeline.write sha256:", Sha256Hex("k2")), 1,
                  "4 fields");
  ExpectLineError("justone\n", 1, "4 fields");
}

TEST(ApiKeyTableParseTest, BadIdNamesTheLine) {
  ExpectLineError(Line(std::string(65, 'x'), "t", "timeline.read", "k"), 1, "id");
  ExpectLineError(absl::StrCat("\n", Line("caf\xc3\xa9", "t", "timeline.read", "k")), 2, "id");
  // 64 characters are fine.
  EXPECT_EQ(ParseOk(Line(std::string(64, 'x'), "t", "timeline.read", "k")).size(), 1u);
}

TEST(ApiKeyTableParseTest, BadTenantNamesTheLine) {
  std::string good = Line("a", "acme", "timeline.read", "k1");
  ExpectLineError(absl::StrCat(good, "\n", Line("b", "ac.me", "timeline.read", "k2")), 2,
                  "tenant");
  ExpectLineError(absl::StrCat(good, "\n", Line("b", "acme!", "timeline.read", "k2")), 2,
                  "tenant");
  ExpectLineError(absl::StrCat(good, "\n\n", Line("b", "a/b", "timeline.read", "k2")), 3,
                  "tenant");
  ExpectLineError(Line("b", std::string(65, 't'), "timeline.read", "k2"), 1, "tenant");
  EXPECT_EQ(ParseOk(Line("b", std::string(64, 't'), "timeline.read", "k2")).size(), 1u);
}

TEST(ApiKeyTableParseTest, UnknownScopeNamesTheLineAndTheScope) {
  std::string good = Line("a", "acme", "timeline.read", "k1");
  ExpectLineError(absl::StrCat(good, "\n", Line("b", "acme", "timeline.read,timeline.admin", "k2")),
                  2, "\"timeline.admin\"");
  ExpectLineError(Line("b", "acme", "all", "k2"), 1, "unknown scope");
  ExpectLineError(Line("b", "acme", ",", "k2"), 1, "no scopes");
}

TEST(ApiKeyTableParseTest, BadHashNamesTheLine) {
  const std::string hex = Sha256Hex("k");
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  const std::vector<std::string> bad = {
      hex,                                  // no sha256: prefix
      "sha256:" + hex.substr(1),            // 63 digits
      "sha256:" + hex + "0",                // 65 digits
      "sha256:" + upper,                    // upper case
      "sha256:" + hex.substr(1) + "g",      // not hex
      "SHA256:" + hex,                      // prefix case
      "sha1:" + hex,                        // another algorithm
      "sha256:",                            // empty
      "sha256:sha256:" + hex.substr(7),     // prefix twice
  };
  for (const std::string& h : bad) {
    SCOPED_TRACE(h);
    ExpectLineError(absl::StrCat("# c\n", "a acme timeline.read ", h, "\n"), 2, "sha256:");
  }
}

TEST(ApiKeyTableParseTest, DuplicateIdNamesBothLines) {
  std::string text = absl::StrCat(Line("a", "acme", "timeline.read", "k1"), "\n",   //
                                  "# another\n",                                   //
                                  Line("b", "acme", "timeline.read", "k2"), "\n",  //
                                  Line("a", "other", "timeline.write", "k3"), "\n");
  // An id is unique across tenants, too (it names the key in the audit log).
  ExpectLineError(text, 4, "also on line 1");
}

TEST(ApiKeyTableParseTest, DuplicateHashNamesTheLine) {
  std::string text = absl::StrCat(Line("a", "acme", "timeline.read", "same"), "\n",
                                  Line("b", "other", "timeline.write", "other-key"), "\n",
                                  Line("c", "other", "privacy.admin", "same"), "\n");
  ExpectLineError(text, 3, "same key hash");
}

TEST(ApiKeyTableParseTest, TheFirstErrorWins) {
  std::string text = absl::StrCat(Line("a", "acme", "timeline.read", "k1"), "\n",
                                  "b acme timeline.read\n",                           // line 2
                                  Line("c", "ac.me", "timeline.read", "k3"), "\n");  // line 3
  ExpectLineError(text, 2, "4 fields");
}

// ---------------------------------------------------------------------------------------------
// ApiKeyTable::Find

TEST(ApiKeyTableFindTest, RightWrongEmptyAndOversizedKeys) {
  const std::string key = GenerateKey();
  ApiKeyTable table = ParseOk(Line("console", "acme", "timeline.read", key));
  ASSERT_EQ(table.size(), 1u);

  const ApiKey* found = table.Find(key);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, "console");
  EXPECT_EQ(found->tenant, "acme");

  EXPECT_EQ(table.Find(""), nullptr);
  EXPECT_EQ(table.Find(key.substr(0, key.size() - 1)), nullptr);  // a prefix
  EXPECT_EQ(table.Find(key + "x"), nullptr);                       // longer
  EXPECT_EQ(table.Find(" " + key), nullptr);                       // Find does not trim
  std::string other_case = key;
  other_case[3] = other_case[3] == 'A' ? 'a' : 'A';
  if (other_case != key) EXPECT_EQ(table.Find(other_case), nullptr);
  EXPECT_EQ(table.Find(Sha256Hex(key)), nullptr);  // the hash is not the key
  EXPECT_EQ(table.Find("sha256:" + Sha256Hex(key)), nullptr);
  EXPECT_EQ(table.Find(GenerateKey()), nullptr);
}

TEST(ApiKeyTableFindTest, OversizedKeysAreUnknownEvenWhenTheirHashIsListed) {
  const std::string at_limit(512, 'k');
  const std::string over_limit(513, 'k');
  const std::string huge(1 << 20, 'k');
  ApiKeyTable table = ParseOk(absl::StrCat(Line("limit", "acme", "timeline.read", at_limit), "\n",
                                           Line("over", "acme", "timeline.read", over_limit), "\n",
                                           Line("huge", "acme", "timeline.read", huge), "\n"));
  ASSERT_EQ(table.size(), 3u);
  ASSERT_NE(table.Find(at_limit), nullptr);
  EXPECT_EQ(table.Find(at_limit)->id, "limit");
  EXPECT_EQ(table.Find(over_limit), nullptr);
  EXPECT_EQ(table.Find(huge), nullptr);
}

TEST(ApiKeyTableFindTest, AddReplacesAndDistinguishesKeys) {
  ApiKeyTable table;
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Find("k"), nullptr);
  table.Add(Sha256Hex("k"), ApiKey{"first", "acme", {Scope::kTimelineRead}});
  table.Add(Sha256Hex("j"), ApiKey{"second", "other", {Scope::kPrivacyAdmin}});
  ASSERT_NE(table.Find("k"), nullptr);
  EXPECT_EQ(table.Find("k")->id, "first");
  ASSERT_NE(table.Find("j"), nullptr);
  EXPECT_EQ(table.Find("j")->tenant, "other");
  EXPECT_TRUE(table.Find("j")->scopes.Has(Scope::kPrivacyAdmin));
  EXPECT_FALSE(table.Find("j")->scopes.Has(Scope::kTimelineRead));
  table.Add(Sha256Hex("k"), ApiKey{"replaced", "acme", {Scope::kTimelineWrite}});
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find("k")->id, "replaced");
}

TEST(ApiKeyTableFindTest, ManyKeys) {
  std::string text;
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back(GenerateKey());
    absl::StrAppend(&text, Line(absl::StrCat("key-", i), absl::StrCat("t", i % 7),
                                i % 2 ? "timeline.read" : "timeline.write", keys.back()),
                    "\n");
  }
  ApiKeyTable table = ParseOk(text);
  ASSERT_EQ(table.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    const ApiKey* k = table.Find(keys[i]);
    ASSERT_NE(k, nullptr) << i;
    EXPECT_EQ(k->id, absl::StrCat("key-", i));
    EXPECT_EQ(k->tenant, absl::StrCat("t", i % 7));
    EXPECT_EQ(k->scopes.Has(Scope::kTimelineRead), i % 2 == 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Rate limit settings after the hash

TEST(ApiKeyTableParseTest, RateAndBurstSettings) {
  ApiKeyTable table = ParseOk(absl::StrCat(
      Line("a", "acme", "timeline.read", "k1"), "\n", Line("b", "acme", "timeline.read", "k2"),
      " rate=50/s burst=200\n", Line("c", "acme", "timeline.read", "k3"), "\tburst=7\trate=0.5/s\n",
      Line("d", "acme", "timeline.read", "k4"), " rate=unlimited\n",
      Line("e", "acme", "timeline.read", "k5"), " rate=20/s\n"));
  const RateLimit fallback{200, 400};
  EXPECT_EQ(table.Find("k1")->LimitOr(fallback), fallback);
  EXPECT_EQ(table.Find("k2")->LimitOr(fallback), (RateLimit{50, 200}));
  EXPECT_EQ(table.Find("k3")->LimitOr(fallback), (RateLimit{0.5, 7}));
  EXPECT_TRUE(table.Find("k4")->LimitOr(fallback).unlimited());
  // Only rate=: a burst of twice the rate.
  EXPECT_EQ(table.Find("k5")->LimitOr(fallback), (RateLimit{20, 40}));
}

TEST(ApiKeyTableParseTest, BadSettingsNameTheLineAndTheSetting) {
  std::string good = Line("a", "acme", "timeline.read", "k1");
  std::string second = Line("b", "acme", "timeline.read", "k2");
  ExpectLineError(absl::StrCat(good, "\n", second, " rate=50\n"), 2, "rate: want <calls>/s");
  ExpectLineError(absl::StrCat(second, " rate=0/s\n"), 1, "rate: want");
  ExpectLineError(absl::StrCat(second, " rate=-3/s\n"), 1, "rate: want");
  ExpectLineError(absl::StrCat(second, " rate=2000000/s\n"), 1, "rate: want");
  ExpectLineError(absl::StrCat(second, " rate=fast/s\n"), 1, "rate: want");
  ExpectLineError(absl::StrCat(second, " burst=0\n"), 1, "burst: want");
  ExpectLineError(absl::StrCat(second, " burst=1.5\n"), 1, "burst: want");
  ExpectLineError(absl::StrCat(second, " rate=1/s rate=2/s\n"), 1, "rate= given twice");
  ExpectLineError(absl::StrCat(second, " speed=1/s\n"), 1, "unknown setting \"speed=1/s\"");
  // Not name=value: the fields are off (an inline comment).
  ExpectLineError(absl::StrCat(second, " rate=1/s # note\n"), 1, "4 fields");
}

// ---------------------------------------------------------------------------------------------
// TokenBucket

TEST(TokenBucketTest, BurstThenRate) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  TokenBucket bucket(RateLimit{10, 3}, t0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Take(t0), absl::ZeroDuration()) << i;
  // Empty: the next token in 1/10 s, and nothing is taken by asking.
  EXPECT_NEAR(absl::ToDoubleMilliseconds(bucket.Take(t0)), 100, 1e-6);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(bucket.Take(t0 + absl::Milliseconds(60))), 40, 1e-6);
  EXPECT_EQ(bucket.Take(t0 + absl::Milliseconds(100)), absl::ZeroDuration());
  EXPECT_GT(bucket.Take(t0 + absl::Milliseconds(100)), absl::ZeroDuration());
  // A long quiet spell banks no more than the burst.
  absl::Time later = t0 + absl::Hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Take(later), absl::ZeroDuration()) << i;
  EXPECT_GT(bucket.Take(later), absl::ZeroDuration());
}

TEST(TokenBucketTest, OverOneSecondAtMostBurstPlusRate) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  TokenBucket bucket(RateLimit{200, 400}, t0);
  int taken = 0;
  for (int ms = 0; ms <= 1000; ++ms) {
    for (int i = 0; i < 10; ++i) {  // 10,000 calls a second
      if (bucket.Take(t0 + absl::Milliseconds(ms)) == absl::ZeroDuration()) ++taken;
    }
  }
  EXPECT_NEAR(taken, 600, 1);  // the refill is a sum of doubles
}

TEST(TokenBucketTest, UnlimitedNeverWaitsAndResetKeepsTheBankedTokens) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  TokenBucket unlimited(RateLimit{0, 0}, t0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(unlimited.Take(t0), absl::ZeroDuration());

  TokenBucket bucket(RateLimit{1, 10}, t0);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(bucket.Take(t0), absl::ZeroDuration());
  bucket.Reset(RateLimit{1, 5}, t0);  // 2 banked stay
  EXPECT_EQ(bucket.Take(t0), absl::ZeroDuration());
  EXPECT_EQ(bucket.Take(t0), absl::ZeroDuration());
  EXPECT_GT(bucket.Take(t0), absl::ZeroDuration());
  bucket.Reset(RateLimit{1, 1}, t0 + absl::Seconds(30));  // capped by the new burst
  EXPECT_EQ(bucket.Take(t0 + absl::Seconds(30)), absl::ZeroDuration());
  EXPECT_GT(bucket.Take(t0 + absl::Seconds(30)), absl::ZeroDuration());
}

}  // namespace
}  // namespace onestory::auth
