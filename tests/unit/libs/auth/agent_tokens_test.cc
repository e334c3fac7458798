#include "libs/auth/agent_tokens.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace onestory::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------------------------
// Keys and signatures, made with OpenSSL in the test (the library only verifies).

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string PublicPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), key), 1);
  return BioText(bio.get());
}

std::string PrivatePem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  return BioText(bio.get());
}

std::string Random(size_t n) {
  std::string out(n, '\0');
  EXPECT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)), 1);
  return out;
}

std::string B64(absl::string_view bytes) { return absl::WebSafeBase64Escape(bytes); }

std::string HmacSha256(absl::string_view secret, absl::string_view input) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t len = 0;
  EXPECT_NE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                      reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac,
                      sizeof mac, &len),
            nullptr);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// SHA-256 with `key`: DER for EC (as OpenSSL makes it), PKCS#1 v1.5 for RSA.
std::string DigestSign(EVP_PKEY* key, absl::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key), 1);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(input.data());
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()), 1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                           input.size()),
            1);
  sig.resize(len);
  return sig;
}

// A DER ECDSA signature as JOSE's r||s, 32 bytes each.
std::string DerToRaw(absl::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  EXPECT_NE(sig, nullptr);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out, 32), 32);
  EXPECT_EQ(BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out + 32, 32), 32);
  return raw;
}

void WriteFile(const std::string& path, absl::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

// ---------------------------------------------------------------------------------------------
// Tokens, built from JSON members given as raw JSON text so a test can put anything in them.

using Members = std::map<std::string, std::string>;  // name -> raw JSON value

std::string Json(const Members& members) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : members) parts.push_back(absl::StrCat("\"", name, "\":", value));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string Str(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

std::string Seconds(absl::Time t) { return absl::StrCat(absl::ToUnixSeconds(t)); }

enum class SignAs { kHs256, kEs256, kEs256Der, kRs256, kNothing };

// "2026-06-01T00:00:00Z": a whole second, so exp and its boundaries are exact.
const absl::Time kNow = absl::FromUnixSeconds(1780272000);

class AgentTokensTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ec_key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    other_ec_key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    p384_key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
    rsa_key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    rsa1024_key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
    ASSERT_NE(ec_key_, nullptr);
    ASSERT_NE(other_ec_key_, nullptr);
    ASSERT_NE(p384_key_, nullptr);
    ASSERT_NE(rsa_key_, nullptr);
    ASSERT_NE(rsa1024_key_, nullptr);
    dir_ = absl::StrCat(::testing::TempDir(), "/agent_tokens_test_", getpid());
    mkdir(dir_.c_str(), 0700);
    WriteFile(dir_ + "/ec.pem", PublicPem(ec_key_));
    WriteFile(dir_ + "/p384.pem", PublicPem(p384_key_));
    WriteFile(dir_ + "/rsa.pem", PublicPem(rsa_key_));
    WriteFile(dir_ + "/rsa1024.pem", PublicPem(rsa1024_key_));
    WriteFile(dir_ + "/ec.key.pem", PrivatePem(ec_key_));
    WriteFile(dir_ + "/rsa.key.pem", PrivatePem(rsa_key_));
    secret_ = Random(32);
    globex_secret_ = Random(48);
  }

  static void TearDownTestSuite() {
    for (EVP_PKEY* k : {ec_key_, other_ec_key_, p384_key_, rsa_key_, rsa1024_key_}) {
      EVP_PKEY_free(k);
    }
    int ignored = std::system(absl::StrCat("rm -rf '", dir_, "'").c_str());
    (void)ignored;
  }

  void SetUp() override {
    absl::StatusOr<AgentTokenKeys> keys = AgentTokenKeys::Parse(KeysText(), dir_);
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *std::move(keys);
  }

  static std::string KeysText() {
    return absl::StrCat("# tenant kid alg key\n",                    //
                        "acme k1 HS256 ", B64(secret_), "\n",        //
                        "\n",                                        //
                        "acme\tec1\tES256\tec.pem\n",                //
                        "  acme rsa1 RS256 ", dir_, "/rsa.pem  \n",  //
                        "globex g1 HS256 ", B64(globex_secret_), "\n");
  }

  static Members Header(absl::string_view alg, absl::string_view kid) {
    return {{"alg", Str(alg)}, {"kid", Str(kid)}, {"typ", Str("JWT")}};
  }

  static Members Claims() {
    return {{"tenant", Str("acme")},
            {"sub", Str("agent-7")},
            {"aud", Str("onestory")},
            {"iat", Seconds(kNow)},
            {"exp", Seconds(kNow + absl::Minutes(10))},
            {"audience", Str("AGENT")},
            {"scope", Str("timeline.read timeline.write context.read.agent")}};
  }

  // "<header>.<payload>.<signature>", signed as `how` says over the first two segments.
  static std::string Jwt(const Members& header, const Members& claims, SignAs how) {
    std::string input = absl::StrCat(B64(Json(header)), ".", B64(Json(claims)));
    return absl::StrCat(input, ".", B64(Sign(how, input)));
  }

  static std::string Sign(SignAs how, absl::string_view input) {
    switch (how) {
      case SignAs::kHs256:
        return HmacSha256(secret_, input);
      case SignAs::kEs256:
        return DerToRaw(DigestSign(ec_key_, input));
      case SignAs::kEs256Der:
        return DigestSign(ec_key_, input);
      case SignAs::kRs256:
        return DigestSign(rsa_key_, input);
      case SignAs::kNothing:
        return "";
    }
    return "";
  }

  static std::string Hs256(const Members& claims) {
    return Jwt(Header("HS256", "k1"), claims, SignAs::kHs256);
  }

  // `claims` with `name` set to the raw JSON `value`, or removed when value is empty.
  static Members With(Members claims, const std::string& name, const std::string& value) {
    if (value.empty()) {
      claims.erase(name);
    } else {
      claims[name] = value;
    }
    return claims;
  }

  absl::StatusOr<AgentToken> Verify(absl::string_view jwt, absl::Time now = kNow) {
    return keys_.Verify(jwt, now);
  }

  void ExpectRefused(absl::string_view jwt, absl::string_view why, absl::Time now = kNow) {
    absl::StatusOr<AgentToken> token = Verify(jwt, now);
    ASSERT_FALSE(token.ok()) << "accepted: " << jwt;
    EXPECT_EQ(token.status().code(), absl::StatusCode::kUnauthenticated) << token.status();
    EXPECT_THAT(std::string(token.status().message()), StartsWith("agent token: "));
    EXPECT_THAT(std::string(token.status().message()), HasSubstr(std::string(why))) << jwt;
  }

  void ExpectAccepted(absl::string_view jwt, absl::Time now = kNow) {
    absl::StatusOr<AgentToken> token = Verify(jwt, now);
    EXPECT_TRUE(token.ok()) << token.status() << "\n" << jwt;
  }

  static inline EVP_PKEY* ec_key_ = nullptr;
  static inline EVP_PKEY* other_ec_key_ = nullptr;
  static inline EVP_PKEY* p384_key_ = nullptr;
  static inline EVP_PKEY* rsa_key_ = nullptr;
  static inline EVP_PKEY* rsa1024_key_ = nullptr;
  static inline std::string dir_;
  static inline std::string secret_;
  static inline std::string globex_secret_;
  AgentTokenKeys keys_;
};

// ---------------------------------------------------------------------------------------------
// Accepted

TEST_F(AgentTokensTest, Hs256Accepted) {
  absl::StatusOr<AgentToken> token = Verify(Hs256(Claims()));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->tenant, "acme");
  EXPECT_EQ(token->subject, "agent-7");
  EXPECT_EQ(token->audience, Audience::kAgent);
  EXPECT_EQ(token->scopes.ToString(), "timeline.write,timeline.read,context.read.agent");
  EXPECT_EQ(token->kid, "k1");
  EXPECT_EQ(token->expires, kNow + absl::Minutes(10));
  EXPECT_EQ(keys_.size(), 4u);
}

TEST_F(AgentTokensTest, Es256Accepted) {
  absl::StatusOr<AgentToken> token = Verify(Jwt(Header("ES256", "ec1"), Claims(), SignAs::kEs256));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->kid, "ec1");
  EXPECT_EQ(token->tenant, "acme");
}

TEST_F(AgentTokensTest, Rs256Accepted) {
  absl::StatusOr<AgentToken> token = Verify(Jwt(Header("RS256", "rsa1"), Claims(), SignAs::kRs256));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->kid, "rsa1");
}

TEST_F(AgentTokensTest, OtherTenantsKey) {
  Members claims = With(Claims(), "tenant", Str("globex"));
  std::string input = absl::StrCat(B64(Json(Header("HS256", "g1"))), ".", B64(Json(claims)));
  std::string jwt = absl::StrCat(input, ".", B64(HmacSha256(globex_secret_, input)));
  absl::StatusOr<AgentToken> token = Verify(jwt);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->tenant, "globex");
  // acme's secret does not sign for globex's key.
  ExpectRefused(Jwt(Header("HS256", "g1"), claims, SignAs::kHs256), "bad signature");
}

TEST_F(AgentTokensTest, EveryAudience) {
  for (auto [name, audience] :
       std::vector<std::pair<std::string, Audience>>{{"BOT", Audience::kBot},
                                                     {"AGENT", Audience::kAgent},
                                                     {"SUPERVISOR", Audience::kSupervisor}}) {
    absl::StatusOr<AgentToken> token = Verify(Hs256(With(Claims(), "audience", Str(name))));
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token->audience, audience);
    EXPECT_EQ(AudienceName(audience), name);
  }
}

TEST_F(AgentTokensTest, OptionalAndAlternativeForms) {
  Members header = Header("HS256", "k1");
  header.erase("typ");
  ExpectAccepted(Jwt(header, Claims(), SignAs::kHs256));
  header["typ"] = Str("jwt");
  ExpectAccepted(Jwt(header, Claims(), SignAs::kHs256));
  ExpectAccepted(Hs256(With(Claims(), "iat", "")));
  ExpectAccepted(Hs256(With(Claims(), "aud", R"(["other","onestory"])")));
  ExpectAccepted(Hs256(With(Claims(), "nbf", Seconds(kNow))));
  ExpectAccepted(Hs256(With(Claims(), "exp", "1780272600.5")));  // NumericDate with a fraction
  ExpectAccepted(Hs256(With(Claims(), "sub", Str("bot:faq@acme.example_1-2"))));
  ExpectAccepted(Hs256(With(Claims(), "scope", Str(" timeline.read  timeline.read "))));
  ExpectAccepted(Hs256(With(Claims(), "jti", Str("unused"))));  // unknown claims are ignored
}

// ---------------------------------------------------------------------------------------------
// Time and the clock skew allowed

TEST_F(AgentTokensTest, ExpiredOnly30SecondsAfterExp) {
  const absl::Time exp = kNow + absl::Minutes(10);
  std::string jwt = Hs256(Claims());
  ExpectAccepted(jwt, exp - absl::Seconds(1));
  ExpectAccepted(jwt, exp);
  ExpectAccepted(jwt, exp + absl::Seconds(29));
  ExpectAccepted(jwt, exp + absl::Seconds(30) - absl::Nanoseconds(1));
  ExpectRefused(jwt, "expired at 2026-06-01T00:10:00Z", exp + absl::Seconds(30));
  ExpectRefused(jwt, "expired at 2026-06-01T00:10:00Z", exp + absl::Hours(5));
}

TEST_F(AgentTokensTest, ExpAtMost12HoursAndSkewAhead) {
  ExpectAccepted(Hs256(With(Claims(), "exp", Seconds(kNow + absl::Hours(12)))));
  ExpectAccepted(Hs256(With(Claims(), "exp", Seconds(kNow + absl::Hours(12) + absl::Seconds(30)))));
  ExpectRefused(Hs256(With(Claims(), "exp", Seconds(kNow + absl::Hours(12) + absl::Seconds(31)))),
                "exp is more than 12 h ahead");
  ExpectRefused(Hs256(With(Claims(), "exp", "1e300")), "exp is more than 12 h ahead");
}

TEST_F(AgentTokensTest, NotValidBeforeNbfLessSkew) {
  ExpectAccepted(Hs256(With(Claims(), "nbf", Seconds(kNow + absl::Seconds(30)))));
  ExpectRefused(Hs256(With(Claims(), "nbf", Seconds(kNow + absl::Seconds(31)))),
                "not valid before 2026-06-01T00:00:31Z");
  ExpectRefused(Hs256(With(Claims(), "nbf", Str("soon"))), "nbf must be a number");
}

TEST_F(AgentTokensTest, ExpRequiredAndNumeric) {
  ExpectRefused(Hs256(With(Claims(), "exp", "")), "exp is required");
  ExpectRefused(Hs256(With(Claims(), "exp", Str("1780272600"))), "exp must be a number");
  ExpectRefused(Hs256(With(Claims(), "exp", "null")), "exp must be a number");
  ExpectRefused(Hs256(With(Claims(), "iat", Str("now"))), "iat must be a number");
}

// ---------------------------------------------------------------------------------------------
// Refused: the header and the key

TEST_F(AgentTokensTest, AlgNoneRefused) {
  for (const char* none : {"none", "None", "NONE"}) {
    ExpectRefused(Jwt(Header(none, "k1"), Claims(), SignAs::kNothing),
                  "alg 'none' is not accepted");
  }
}

TEST_F(AgentTokensTest, OtherAlgsRefused) {
  ExpectRefused(Jwt(Header("HS512", "k1"), Claims(), SignAs::kHs256),
                "alg 'HS512' is not accepted");
  ExpectRefused(Jwt(Header("hs256", "k1"), Claims(), SignAs::kHs256), "alg 'hs256'");
  Members header = Header("HS256", "k1");
  header.erase("alg");
  ExpectRefused(Jwt(header, Claims(), SignAs::kHs256), "alg is required");
  header["alg"] = "256";
  ExpectRefused(Jwt(header, Claims(), SignAs::kHs256), "alg must be a string");
}

// The classic key confusion: the RSA public key (which anyone may have) used as an HMAC secret.
TEST_F(AgentTokensTest, HmacWithThePublicKeyOfAnRs256KeyRefused) {
  std::string input = absl::StrCat(B64(Json(Header("HS256", "rsa1"))), ".", B64(Json(Claims())));
  std::string pem = PublicPem(rsa_key_);
  for (const std::string& secret : {pem, std::string(absl::StripSuffix(pem, "\n"))}) {
    ExpectRefused(absl::StrCat(input, ".", B64(HmacSha256(secret, input))),
                  "alg 'HS256' does not match key 'rsa1' of tenant 'acme', which is RS256");
  }
  ExpectRefused(Jwt(Header("ES256", "k1"), Claims(), SignAs::kEs256),
                "alg 'ES256' does not match key 'k1' of tenant 'acme', which is HS256");
  ExpectRefused(Jwt(Header("RS256", "ec1"), Claims(), SignAs::kRs256), "does not match");
}

TEST_F(AgentTokensTest, UnknownKidRefused) {
  ExpectRefused(Jwt(Header("HS256", "k9"), Claims(), SignAs::kHs256),
                "unknown kid 'k9' for tenant 'acme'");
}

TEST_F(AgentTokensTest, TenantWithoutThatKidRefused) {
  // k1 is acme's; a token claiming globex cannot use it.
  ExpectRefused(Hs256(With(Claims(), "tenant", Str("globex"))),
                "unknown kid 'k1' for tenant 'globex'");
  ExpectRefused(Hs256(With(Claims(), "tenant", Str("nobody"))),
                "unknown kid 'k1' for tenant 'nobody'");
  ExpectRefused(Hs256(With(Claims(), "tenant", "")), "tenant is required");
  ExpectRefused(Hs256(With(Claims(), "tenant", Str("ac:me"))), "tenant: only letters");
  ExpectRefused(Hs256(With(Claims(), "tenant", "7")), "tenant must be a string");
}

TEST_F(AgentTokensTest, HeaderFieldsChecked) {
  Members header = Header("HS256", "k1");
  header["typ"] = Str("at+jwt");
  ExpectRefused(Jwt(header, Claims(), SignAs::kHs256), "typ must be \"JWT\"");
  header = Header("HS256", "k1");
  header.erase("kid");
  ExpectRefused(Jwt(header, Claims(), SignAs::kHs256), "kid is required");
  ExpectRefused(Jwt(Header("HS256", "k/1"), Claims(), SignAs::kHs256),
                "kid must be 1-64 characters of [A-Za-z0-9._-]");
  ExpectRefused(Jwt(Header("HS256", ""), Claims(), SignAs::kHs256), "kid must be 1-64");
  header = Header("HS256", "k1");
  header["crit"] = R"(["b64"])";
  ExpectRefused(Jwt(header, Claims(), SignAs::kHs256), "crit");
}

// ---------------------------------------------------------------------------------------------
// Refused: the signature

TEST_F(AgentTokensTest, TamperedPayloadIsABadSignature) {
  for (auto [alg, kid, how] : std::vector<std::tuple<std::string, std::string, SignAs>>{
           {"HS256", "k1", SignAs::kHs256},
           {"ES256", "ec1", SignAs::kEs256},
           {"RS256", "rsa1", SignAs::kRs256}}) {
    std::string jwt = Jwt(Header(alg, kid), Claims(), how);
    std::vector<std::string> parts = absl::StrSplit(jwt, '.');
    Members more = With(Claims(), "scope", Str("privacy.admin"));
    std::string tampered = absl::StrCat(parts[0], ".", B64(Json(more)), ".", parts[2]);
    ExpectRefused(tampered, "bad signature");
    // The message never repeats the signature.
    EXPECT_THAT(std::string(Verify(tampered).status().message()), Not(HasSubstr(parts[2])));
  }
}

TEST_F(AgentTokensTest, TamperedSignatureRefused) {
  std::string jwt = Hs256(Claims());
  jwt.back() = jwt.back() == 'A' ? 'Q' : 'A';  // changes the last byte's high bits
  ExpectRefused(jwt, "bad signature");
  std::vector<std::string> parts = absl::StrSplit(Hs256(Claims()), '.');
  ExpectRefused(absl::StrCat(parts[0], ".", parts[1], ".", B64(Random(32))), "bad signature");
  ExpectRefused(absl::StrCat(parts[0], ".", parts[1], ".", B64(Random(31))), "bad signature");
  ExpectRefused(absl::StrCat(parts[0], ".", parts[1], "."), "bad signature");
}

TEST_F(AgentTokensTest, Es256SignatureOfAnotherKeyRefused) {
  std::string input = absl::StrCat(B64(Json(Header("ES256", "ec1"))), ".", B64(Json(Claims())));
  ExpectRefused(absl::StrCat(input, ".", B64(DerToRaw(DigestSign(other_ec_key_, input)))),
                "bad signature");
  ExpectRefused(absl::StrCat(input, ".", B64(std::string(64, '\0'))), "bad signature");
}

TEST_F(AgentTokensTest, Es256DerSignatureRefused) {
  std::string jwt = Jwt(Header("ES256", "ec1"), Claims(), SignAs::kEs256Der);
  ExpectRefused(jwt, "an ES256 signature must be 64 bytes");
}

TEST_F(AgentTokensTest, Rs256SignatureOfWrongLengthRefused) {
  std::vector<std::string> parts =
      absl::StrSplit(Jwt(Header("RS256", "rsa1"), Claims(), SignAs::kRs256), '.');
  ExpectRefused(absl::StrCat(parts[0], ".", parts[1], ".", B64(Random(255))), "bad signature");
  ExpectRefused(absl::StrCat(parts[0], ".", parts[1], ".", B64(Random(512))), "bad signature");
}

// ---------------------------------------------------------------------------------------------
// Refused: the claims (all signed correctly)

TEST_F(AgentTokensTest, WrongAudRefused) {
  const std::string why = "aud must be \"onestory\"";
  ExpectRefused(Hs256(With(Claims(), "aud", Str("other"))), why);
  ExpectRefused(Hs256(With(Claims(), "aud", Str("OneStory"))), why);
  ExpectRefused(Hs256(With(Claims(), "aud", R"(["a","b"])")), why);
  ExpectRefused(Hs256(With(Claims(), "aud", R"([])")), why);
  ExpectRefused(Hs256(With(Claims(), "aud", R"({"onestory":1})")), why);
  ExpectRefused(Hs256(With(Claims(), "aud", "")), why);
}

TEST_F(AgentTokensTest, BadSubjectRefused) {
  const std::string why = "sub must be 1-128 characters of [A-Za-z0-9._:@-]";
  ExpectRefused(Hs256(With(Claims(), "sub", "")), "sub is required");
  ExpectRefused(Hs256(With(Claims(), "sub", Str(""))), why);
  ExpectRefused(Hs256(With(Claims(), "sub", Str("agent 7"))), why);
  ExpectRefused(Hs256(With(Claims(), "sub", Str(std::string(129, 'a')))), why);
  ExpectAccepted(Hs256(With(Claims(), "sub", Str(std::string(128, 'a')))));
}

TEST_F(AgentTokensTest, BadAudienceRefused) {
  ExpectRefused(Hs256(With(Claims(), "audience", Str("CUSTOMER"))),
                "audience 'CUSTOMER' is not BOT, AGENT or SUPERVISOR");
  ExpectRefused(Hs256(With(Claims(), "audience", Str("agent"))), "audience 'agent'");
  ExpectRefused(Hs256(With(Claims(), "audience", "")), "audience is required");
}

TEST_F(AgentTokensTest, BadScopeRefused) {
  ExpectRefused(Hs256(With(Claims(), "scope", Str("timeline.read timeline.delete"))),
                "scope: unknown scope 'timeline.delete'");
  ExpectRefused(Hs256(With(Claims(), "scope", Str("timeline.read,timeline.write"))),
                "separated by spaces, not commas");
  ExpectRefused(Hs256(With(Claims(), "scope", Str(""))), "at least one scope");
  ExpectRefused(Hs256(With(Claims(), "scope", Str("   "))), "at least one scope");
  ExpectRefused(Hs256(With(Claims(), "scope", "")), "scope is required");
  ExpectRefused(Hs256(With(Claims(), "scope", R"(["timeline.read"])")), "scope must be a string");
  // A long unknown name is quoted short.
  absl::StatusOr<AgentToken> token =
      Verify(Hs256(With(Claims(), "scope", Str(std::string(1000, 'x')))));
  EXPECT_LT(token.status().message().size(), 200u) << token.status();
}

// ---------------------------------------------------------------------------------------------
// Refused: the form

TEST_F(AgentTokensTest, TooBigRefused) {
  std::string jwt = Hs256(With(Claims(), "pad", Str(std::string(6000, 'x'))));
  ASSERT_GT(jwt.size(), kMaxAgentTokenBytes);
  ExpectRefused(jwt, "longer than 8192 bytes");
  std::string fits = Hs256(With(Claims(), "pad", Str(std::string(5000, 'x'))));
  ASSERT_LE(fits.size(), kMaxAgentTokenBytes);
  ExpectAccepted(fits);
}

TEST_F(AgentTokensTest, NotThreeSegmentsRefused) {
  std::string jwt = Hs256(Claims());
  const std::string why = "not three base64url segments separated by '.'";
  ExpectRefused(jwt.substr(0, jwt.rfind('.')), why);
  ExpectRefused(jwt + ".e30", why);
  ExpectRefused("", why);
  ExpectRefused("os_abcdef", why);
}

TEST_F(AgentTokensTest, BadBase64Refused) {
  std::vector<std::string> parts = absl::StrSplit(Hs256(Claims()), '.');
  auto join = [](absl::string_view a, absl::string_view b, absl::string_view c) {
    return absl::StrCat(a, ".", b, ".", c);
  };
  ExpectRefused(join(parts[0] + "=", parts[1], parts[2]), "header is not base64url");
  ExpectRefused(join(parts[0], parts[1] + "==", parts[2]), "payload is not base64url");
  ExpectRefused(join(parts[0], parts[1], parts[2] + "="), "signature is not base64url");
  ExpectRefused(join(parts[0], "ab+/", parts[2]), "payload is not base64url");
  ExpectRefused(join(parts[0], "abcde", parts[2]), "payload is not base64url");  // 5 mod 4 == 1
  ExpectRefused(join("", parts[1], parts[2]), "header is not a JSON object");
  // "e30" is "{}"; "e31" decodes to the same bytes with a stray low bit: not canonical.
  ExpectRefused(join("e31", parts[1], parts[2]), "header is not base64url");
}

TEST_F(AgentTokensTest, NotJsonObjectsRefused) {
  auto token = [](absl::string_view header, absl::string_view payload) {
    std::string input = absl::StrCat(B64(header), ".", B64(payload));
    return absl::StrCat(input, ".", B64(HmacSha256(secret_, input)));
  };
  std::string header = Json(Header("HS256", "k1"));
  std::string payload = Json(Claims());
  ExpectRefused(token("[1]", payload), "header is not a JSON object");
  ExpectRefused(token(header, "\"x\""), "payload is not a JSON object");
  ExpectRefused(token(header, payload + "x"), "payload is not a JSON object");
  // A claim given twice is refused, not resolved first- or last-wins.
  ExpectRefused(
      token(header, absl::StrCat(absl::StripSuffix(payload, "}"), R"(,"tenant":"acme"})")),
      "repeated key");
}

// ---------------------------------------------------------------------------------------------
// LooksLikeJwt

TEST(LooksLikeJwtTest, TellsJwtsFromApiKeys) {
  EXPECT_TRUE(LooksLikeJwt("eyJh.eyJ0.c2ln"));
  EXPECT_TRUE(LooksLikeJwt("eyJh.eyJ0."));  // unsigned: Verify refuses it by name
  EXPECT_TRUE(LooksLikeJwt("a-_b.c.d"));
  EXPECT_FALSE(LooksLikeJwt("os_dGhpcyBpcyBhIGtleSBvZiAzMiBieXRlcyBsb25nIQ"));
  EXPECT_FALSE(LooksLikeJwt(""));
  EXPECT_FALSE(LooksLikeJwt("a.b"));
  EXPECT_FALSE(LooksLikeJwt("a.b.c.d"));
  EXPECT_FALSE(LooksLikeJwt(".b.c"));
  EXPECT_FALSE(LooksLikeJwt("a..c"));
  EXPECT_FALSE(LooksLikeJwt("a.b=.c"));
  EXPECT_FALSE(LooksLikeJwt("a.b.c d"));
}

// ---------------------------------------------------------------------------------------------
// The keys file

class AgentTokenKeysParseTest : public AgentTokensTest {
 protected:
  // Parses `text`, expecting INVALID_ARGUMENT that starts "line <n>: " and contains `why`.
  void ExpectLineError(absl::string_view text, int line, absl::string_view why) {
    absl::StatusOr<AgentTokenKeys> keys = AgentTokenKeys::Parse(text, dir_);
    ASSERT_FALSE(keys.ok()) << "parsed:\n" << text;
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument) << keys.status();
    EXPECT_THAT(std::string(keys.status().message()), StartsWith(absl::StrCat("line ", line, ": ")))
        << text;
    EXPECT_THAT(std::string(keys.status().message()), HasSubstr(std::string(why))) << text;
  }

  const std::string good_ = absl::StrCat("# keys\n", "acme k1 HS256 ", B64(Random(32)), "\n");
};

TEST_F(AgentTokenKeysParseTest, EmptyAndCommentsOnly) {
  absl::StatusOr<AgentTokenKeys> keys = AgentTokenKeys::Parse("# nothing\n\n   \n", dir_);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 0u);
  EXPECT_EQ(keys->Verify(Hs256(Claims()), kNow).status().message(),
            "agent token: unknown kid 'k1' for tenant 'acme'");
}

TEST_F(AgentTokenKeysParseTest, ShortSecretRefused) {
  ExpectLineError(good_ + "acme k2 HS256 " + B64(Random(31)) + "\n", 3,
                  "the HS256 secret is 31 bytes; at least 32 are required");
  ExpectLineError(good_ + "acme k2 HS256 not+base64/url\n", 3, "must be base64url");
  // Padding from a generic encoder is tolerated.
  absl::StatusOr<AgentTokenKeys> keys =
      AgentTokenKeys::Parse("acme k2 HS256 " + B64(Random(32)) + "=\n", dir_);
  EXPECT_TRUE(keys.ok()) << keys.status();
}

TEST_F(AgentTokenKeysParseTest, MissingPemRefused) {
  ExpectLineError(good_ + "acme e1 ES256 missing.pem\n", 3,
                  absl::StrCat("cannot read ", dir_, "/missing.pem: No such file"));
  ExpectLineError(good_ + "acme e1 ES256 /nonexistent/ec.pem\n", 3,
                  "cannot read /nonexistent/ec.pem");
  WriteFile(dir_ + "/garbage.pem", "not a key\n");
  ExpectLineError("acme e1 ES256 garbage.pem\n", 1, "no PEM public key");
  ExpectLineError("acme e1 ES256 ec.key.pem\n", 1, "no PEM public key");  // a private key
}

TEST_F(AgentTokenKeysParseTest, WrongKeyTypeRefused) {
  ExpectLineError(good_ + "acme e1 RS256 ec.pem\n", 3, "an RS256 key must be an RSA key");
  ExpectLineError(good_ + "acme r1 ES256 rsa.pem\n", 3, "an ES256 key must be an EC key on P-256");
  ExpectLineError(good_ + "acme e1 ES256 p384.pem\n", 3, "P-256");
  ExpectLineError(good_ + "acme r1 RS256 rsa1024.pem\n", 3, "at least 2048 bits");
}

TEST_F(AgentTokenKeysParseTest, DuplicateKidRefused) {
  ExpectLineError(good_ + "acme k2 ES256 ec.pem\n# x\nacme k2 RS256 rsa.pem\n", 5,
                  "tenant acme kid k2 also on line 3");
  // The same kid under another tenant is another key.
  absl::StatusOr<AgentTokenKeys> keys =
      AgentTokenKeys::Parse(good_ + "globex k1 ES256 ec.pem\n", dir_);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
}

TEST_F(AgentTokenKeysParseTest, BadTenantOrKidRefused) {
  ExpectLineError(good_ + "ac:me k2 ES256 ec.pem\n", 3, "tenant: only letters");
  ExpectLineError(good_ + std::string(65, 't') + " k2 ES256 ec.pem\n", 3, "tenant: longer than 64");
  ExpectLineError(good_ + "acme k/2 ES256 ec.pem\n", 3, "kid: 1-64 characters of [A-Za-z0-9._-]");
  ExpectLineError(good_ + "acme " + std::string(65, 'k') + " ES256 ec.pem\n", 3, "kid: 1-64");
}

TEST_F(AgentTokenKeysParseTest, WrongFieldCountOrAlgRefused) {
  ExpectLineError(good_ + "acme k2 ES256\n", 3, "want 4 fields");
  ExpectLineError(good_ + "acme k2 ES256 ec.pem # inline comment\n", 3, "want 4 fields");
  ExpectLineError("acme\n", 1, "got 1");
  ExpectLineError(good_ + "acme k2 HS512 " + B64(Random(64)) + "\n", 3,
                  "unknown algorithm \"HS512\"; known: HS256, ES256, RS256");
  ExpectLineError(good_ + "acme k2 none x\n", 3, "unknown algorithm \"none\"");
}

TEST_F(AgentTokenKeysParseTest, FromFileReadsPemsBesideIt) {
  std::string path = dir_ + "/keys";
  WriteFile(path, KeysText());
  absl::StatusOr<AgentTokenKeys> keys = AgentTokenKeys::FromFile(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 4u);
  EXPECT_TRUE(keys->Verify(Jwt(Header("ES256", "ec1"), Claims(), SignAs::kEs256), kNow).ok());

  WriteFile(path, "acme e1 ES256 missing.pem\n");
  absl::StatusOr<AgentTokenKeys> bad = AgentTokenKeys::FromFile(path);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), StartsWith(path + ": line 1: cannot read "));

  absl::StatusOr<AgentTokenKeys> none = AgentTokenKeys::FromFile(dir_ + "/no-such-file");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr(dir_ + "/no-such-file"));
}

// A table is a value: copies share the keys and verify alike (the server swaps tables).
TEST_F(AgentTokenKeysParseTest, CopiesVerifyAlike) {
  AgentTokenKeys copy = keys_;
  keys_ = AgentTokenKeys();
  EXPECT_TRUE(copy.Verify(Jwt(Header("RS256", "rsa1"), Claims(), SignAs::kRs256), kNow).ok());
  EXPECT_FALSE(keys_.Verify(Jwt(Header("RS256", "rsa1"), Claims(), SignAs::kRs256), kNow).ok());
}

// ---------------------------------------------------------------------------------------------
// tools/agent_token.py mints tokens this library accepts.

std::string RunTool(const std::string& command) {
  std::string out;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << command;
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

class AgentTokenToolTest : public AgentTokensTest {
 protected:
  std::string tool_ = absl::StrCat("python3 ", ONESTORY_SOURCE_DIR, "/tools/agent_token.py");
  std::string claims_ =
      "--sub agent-7 --audience SUPERVISOR --scope 'timeline.read context.read.supervisor'";
};

TEST_F(AgentTokenToolTest, Hs256NewSecretAndToken) {
  std::string line = RunTool(tool_ + " --new-secret --tenant acme --kid tool1 2>/dev/null");
  std::vector<std::string> f = absl::StrSplit(line, ' ');
  ASSERT_EQ(f.size(), 4u) << line;
  EXPECT_EQ(absl::StrJoin(f.begin(), f.begin() + 3, " "), "acme tool1 HS256");
  absl::StatusOr<AgentTokenKeys> keys = AgentTokenKeys::Parse(line, dir_);
  ASSERT_TRUE(keys.ok()) << keys.status();

  std::string jwt =
      RunTool(absl::StrCat(tool_, " --tenant acme --kid tool1 --secret=", f[3], " ", claims_));
  ASSERT_TRUE(LooksLikeJwt(jwt)) << jwt;
  absl::StatusOr<AgentToken> token = keys->Verify(jwt, absl::Now());
  ASSERT_TRUE(token.ok()) << token.status() << "\n" << jwt;
  EXPECT_EQ(token->subject, "agent-7");
  EXPECT_EQ(token->audience, Audience::kSupervisor);
  EXPECT_EQ(token->scopes.ToString(), "timeline.read,context.read.supervisor");
  EXPECT_NEAR(absl::ToDoubleSeconds(token->expires - absl::Now()), 3600, 60);
}

TEST_F(AgentTokenToolTest, Es256AndRs256WithAPrivateKey) {
  for (auto [alg, kid, key] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"ES256", "ec1", "ec.key.pem"}, {"RS256", "rsa1", "rsa.key.pem"}}) {
    std::string jwt = RunTool(absl::StrCat(tool_, " --alg ", alg, " --key ", dir_, "/", key,
                                           " --tenant acme --kid ", kid, " --ttl 600 ", claims_));
    absl::StatusOr<AgentToken> token = keys_.Verify(jwt, absl::Now());
    ASSERT_TRUE(token.ok()) << alg << ": " << token.status() << "\n" << jwt;
    EXPECT_EQ(token->kid, kid);
    EXPECT_NEAR(absl::ToDoubleSeconds(token->expires - absl::Now()), 600, 60);
  }
}

}  // namespace
}  // namespace onestory::auth
