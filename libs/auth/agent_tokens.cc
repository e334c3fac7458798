#include "libs/auth/agent_tokens.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/json_value.h"
#include "libs/common/status_macros.h"
#include "libs/common/validation.h"

namespace onestory::auth {
namespace {

constexpr size_t kMinHmacSecretBytes = 32;
constexpr int kMinRsaBits = 2048;
constexpr size_t kEs256SignatureBytes = 64;  // r||s, 32 bytes each
constexpr size_t kMaxKidBytes = 64;
constexpr size_t kMaxSubjectBytes = 128;
constexpr size_t kMaxKeysFileBytes = 1 << 20;
constexpr size_t kMaxPemBytes = 64 * 1024;

enum class Alg { kHs256, kEs256, kRs256 };

absl::string_view AlgName(Alg alg) {
  switch (alg) {
    case Alg::kHs256:
      return "HS256";
    case Alg::kEs256:
      return "ES256";
    case Alg::kRs256:
      return "RS256";
  }
  return "?";
}

std::optional<Alg> ParseAlg(absl::string_view name) {
  for (Alg alg : {Alg::kHs256, Alg::kEs256, Alg::kRs256}) {
    if (name == AlgName(alg)) return alg;
  }
  return std::nullopt;
}

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, Deleter<EVP_MAC_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;

// Fetched once: the implicit fetch of EVP_sha256() or a name looks the algorithm up again under
// a lock on every call (OpenSSL 3).
const EVP_MD* Sha256() {
  static const EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return fetched != nullptr ? fetched : EVP_sha256();
}

EVP_MAC* Hmac() {
  static EVP_MAC* const fetched = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return fetched;
}

// What the token said, quoted for a message: escaped, and cut short, so a caller cannot make
// the message carry anything but a short printable quote.
std::string Quote(absl::string_view s) {
  constexpr size_t kMaxQuoted = 64;
  return absl::StrCat("'", absl::CEscape(s.substr(0, kMaxQuoted)),
                      s.size() > kMaxQuoted ? "...'" : "'");
}

template <typename... Args>
absl::Status Refuse(const Args&... why) {
  return absl::UnauthenticatedError(absl::StrCat("agent token: ", why...));
}

std::string FormatEpoch(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

bool IsBase64UrlChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

bool IsKidChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool IsSubjectChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
         c == '@' || c == '-';
}

bool AllOf(absl::string_view s, bool (*pred)(char)) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

bool IsValidKid(absl::string_view kid) {
  return !kid.empty() && kid.size() <= kMaxKidBytes && AllOf(kid, IsKidChar);
}

// Base64url without padding, and only its canonical spelling (no stray low bits in the last
// character), so that one token has exactly one spelling.
std::optional<std::string> DecodeBase64Url(absl::string_view s) {
  if (!AllOf(s, IsBase64UrlChar) || s.size() % 4 == 1) return std::nullopt;
  std::string out;
  if (!absl::WebSafeBase64Unescape(s, &out)) return std::nullopt;
  if (absl::WebSafeBase64Escape(out) != s) return std::nullopt;
  return out;
}

std::string JoinPath(absl::string_view dir, absl::string_view path) {
  if (dir.empty() || absl::StartsWith(path, "/")) return std::string(path);
  if (absl::EndsWith(dir, "/")) return absl::StrCat(dir, path);
  return absl::StrCat(dir, "/", path);
}

// The whole file, up to max_bytes; an error naming the path otherwise.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> f(std::fopen(path.c_str(), "rb"));
  if (f == nullptr) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot read ", path, ": ", std::strerror(err)));
  }
  std::string text;
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
    }
  }
  if (std::ferror(f.get())) {
    return absl::InternalError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  return text;
}

// The HS256 secret of a keys-file line.
absl::StatusOr<std::string> DecodeSecret(absl::string_view text) {
  std::optional<std::string> secret = DecodeBase64Url(absl::StripSuffix(
      absl::StripSuffix(text, "="), "="));  // tolerate the padding a generic encoder adds
  if (!secret.has_value()) {
    return absl::InvalidArgumentError("the HS256 secret must be base64url (RFC 4648 §5)");
  }
  if (secret->size() < kMinHmacSecretBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the HS256 secret is ", secret->size(), " bytes; at least ",
                     kMinHmacSecretBytes, " are required (tools/agent_token.py --new-secret)"));
  }
  return *std::move(secret);
}

// The public key in the PEM file at `path`, checked to suit `alg` (ES256 or RS256).
absl::StatusOr<PkeyPtr> LoadPublicKey(Alg alg, const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadFile(path, kMaxPemBytes));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf failed");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no PEM public key (\"-----BEGIN PUBLIC KEY-----\") in it"));
  }
  if (alg == Alg::kEs256) {
    char group[64] = {};
    size_t group_len = 0;
    if (!EVP_PKEY_is_a(key.get(), "EC") ||
        EVP_PKEY_get_group_name(key.get(), group, sizeof group, &group_len) != 1 ||
        OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": an ES256 key must be an EC key on P-256 (prime256v1)"));
    }
  } else if (!EVP_PKEY_is_a(key.get(), "RSA") || EVP_PKEY_get_bits(key.get()) < kMinRsaBits) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": an RS256 key must be an RSA key of at least ", kMinRsaBits, " bits"));
  }
  return key;
}

// JOSE's r||s (RFC 7518 §3.4) as the DER ECDSA-Sig-Value OpenSSL verifies; empty on failure.
std::string RawEcdsaToDer(absl::string_view raw) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  const int half = static_cast<int>(raw.size() / 2);
  BignumPtr r(BN_bin2bn(bytes, half, nullptr));
  BignumPtr s(BN_bin2bn(bytes + half, half, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr) return "";
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return "";
  r.release();  // owned by sig now
  s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return "";
  std::string der(static_cast<size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != len) return "";
  return der;
}

// The string member `name`: nullptr when absent, an error naming it when not a string.
absl::StatusOr<const std::string*> StringMember(const JsonValue& object, absl::string_view name) {
  const JsonValue* v = object.Find(name);
  if (v == nullptr) return nullptr;
  if (!v->is_string()) return Refuse(name, " must be a string");
  return &v->string();
}

absl::StatusOr<const std::string*> RequiredString(const JsonValue& object, absl::string_view name) {
  ASSIGN_OR_RETURN(const std::string* s, StringMember(object, name));
  if (s == nullptr) return Refuse(name, " is required");
  return s;
}

// A NumericDate member (seconds since the epoch, fractions allowed); nullopt when absent.
absl::StatusOr<std::optional<absl::Time>> TimeMember(const JsonValue& object,
                                                     absl::string_view name) {
  const JsonValue* v = object.Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    return Refuse(name, " must be a number (seconds since 1970-01-01T00:00:00Z)");
  }
  return absl::UnixEpoch() + absl::Seconds(v->number());
}

// A decoded segment parsed as a JSON object.
absl::StatusOr<JsonValue> DecodeJsonSegment(absl::string_view segment, absl::string_view what) {
  std::optional<std::string> json = DecodeBase64Url(segment);
  if (!json.has_value()) return Refuse(what, " is not base64url without padding");
  absl::StatusOr<JsonValue> object = ParseJsonObject(*json);
  if (!object.ok()) return Refuse(what, " is not a JSON object: ", object.status().message());
  return object;
}

bool AudContainsOnestory(const JsonValue* aud) {
  if (aud == nullptr) return false;
  if (aud->is_string()) return aud->string() == kAgentTokenAudienceClaim;
  if (!aud->is_array()) return false;
  for (const JsonValue& v : aud->items()) {
    if (v.is_string() && v.string() == kAgentTokenAudienceClaim) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<ScopeSet> ParseScopeClaim(absl::string_view text) {
  if (absl::StrContains(text, ',')) {
    return Refuse("scope: names are separated by spaces, not commas");
  }
  ScopeSet scopes;
  for (absl::string_view name : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    std::optional<Scope> found;
    for (int i = 0; i < kScopeCount; ++i) {
      if (ScopeName(static_cast<Scope>(i)) == name) found = static_cast<Scope>(i);
    }
    if (!found.has_value()) return Refuse("scope: unknown scope ", Quote(name));
    scopes.Add(*found);
  }
  if (scopes.empty()) return Refuse("scope: at least one scope is required");
  return scopes;
}

}  // namespace

struct AgentTokenKeys::Key {
  Alg alg = Alg::kHs256;
  std::string secret;  // HS256
  PkeyPtr public_key;  // ES256, RS256

  ~Key() { OPENSSL_cleanse(secret.data(), secret.size()); }

  // OK when `signature` (decoded) signs `signing_input` ("<header>.<payload>" as sent).
  absl::Status CheckSignature(absl::string_view signing_input, absl::string_view signature) const {
    const auto* input = reinterpret_cast<const unsigned char*>(signing_input.data());
    if (alg == Alg::kHs256) {
      MacCtxPtr ctx(EVP_MAC_CTX_new(Hmac()));
      char digest_name[] = "SHA256";
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
          OSSL_PARAM_construct_end()};
      unsigned char mac[EVP_MAX_MD_SIZE];
      size_t mac_len = 0;
      if (ctx == nullptr ||
          EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                       secret.size(), params) != 1 ||
          EVP_MAC_update(ctx.get(), input, signing_input.size()) != 1 ||
          EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) != 1) {
        ERR_clear_error();
        return absl::InternalError("agent token: HMAC-SHA256 failed in libcrypto");
      }
      if (signature.size() != mac_len || CRYPTO_memcmp(mac, signature.data(), mac_len) != 0) {
        return Refuse("bad signature");
      }
      return absl::OkStatus();
    }
    std::string der;
    if (alg == Alg::kEs256) {
      if (signature.size() != kEs256SignatureBytes) {
        return Refuse("an ES256 signature must be ", kEs256SignatureBytes,
                      " bytes (r||s, RFC 7518 §3.4), not ", signature.size());
      }
      der = RawEcdsaToDer(signature);
      if (der.empty()) return absl::InternalError("agent token: ECDSA_SIG encoding failed");
      signature = der;
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (ctx == nullptr ||
        EVP_DigestVerifyInit(ctx.get(), nullptr, Sha256(), nullptr, public_key.get()) != 1) {
      ERR_clear_error();
      return absl::InternalError("agent token: EVP_DigestVerifyInit failed");
    }
    // 0 is a bad signature, below 0 one OpenSSL could not even decode: the same to the caller.
    const int ok =
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), input, signing_input.size());
    ERR_clear_error();
    if (ok != 1) return Refuse("bad signature");
    return absl::OkStatus();
  }
};

absl::string_view AudienceName(Audience audience) {
  switch (audience) {
    case Audience::kBot:
      return "BOT";
    case Audience::kAgent:
      return "AGENT";
    case Audience::kSupervisor:
      return "SUPERVISOR";
  }
  return "?";
}

bool LooksLikeJwt(absl::string_view bearer) {
  std::vector<absl::string_view> parts = absl::StrSplit(bearer, '.');
  return parts.size() == 3 && !parts[0].empty() && !parts[1].empty() &&
         AllOf(parts[0], IsBase64UrlChar) && AllOf(parts[1], IsBase64UrlChar) &&
         AllOf(parts[2], IsBase64UrlChar);
}

absl::StatusOr<AgentTokenKeys> AgentTokenKeys::Parse(absl::string_view text,
                                                     absl::string_view base_dir) {
  AgentTokenKeys table;
  absl::flat_hash_map<std::pair<std::string, std::string>, int> lines;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    auto fail = [line_no](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", why));
    };
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() != 4) {
      return fail(absl::StrCat("want 4 fields: <tenant> <kid> HS256 <base64url secret>, or ",
                               "<tenant> <kid> ES256|RS256 <PEM public key file>; got ", f.size()));
    }
    if (absl::Status st = ValidateTenant(f[0]); !st.ok()) return fail(st.message());
    if (!IsValidKid(f[1])) return fail("kid: 1-64 characters of [A-Za-z0-9._-]");
    std::optional<Alg> alg = ParseAlg(f[2]);
    if (!alg.has_value()) {
      return fail(absl::StrCat("unknown algorithm \"", absl::CEscape(f[2]),
                               "\"; known: HS256, ES256, RS256"));
    }
    std::pair<std::string, std::string> id(f[0], f[1]);
    if (auto it = lines.find(id); it != lines.end()) {
      return fail(absl::StrCat("tenant ", f[0], " kid ", f[1], " also on line ", it->second));
    }
    auto key = std::make_shared<Key>();
    key->alg = *alg;
    if (*alg == Alg::kHs256) {
      absl::StatusOr<std::string> secret = DecodeSecret(f[3]);
      if (!secret.ok()) return fail(secret.status().message());
      key->secret = *std::move(secret);
    } else {
      absl::StatusOr<PkeyPtr> pkey = LoadPublicKey(*alg, JoinPath(base_dir, f[3]));
      if (!pkey.ok()) return fail(pkey.status().message());
      key->public_key = *std::move(pkey);
    }
    lines.emplace(id, line_no);
    table.keys_.emplace(std::move(id), std::move(key));
  }
  return table;
}

absl::StatusOr<AgentTokenKeys> AgentTokenKeys::FromFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxKeysFileBytes));
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  absl::StatusOr<AgentTokenKeys> keys = Parse(text, dir);
  if (!keys.ok()) {
    return absl::Status(keys.status().code(), absl::StrCat(path, ": ", keys.status().message()));
  }
  return keys;
}

absl::StatusOr<AgentToken> AgentTokenKeys::Verify(absl::string_view jwt, absl::Time now) const {
  if (jwt.size() > kMaxAgentTokenBytes) {
    return Refuse("longer than ", kMaxAgentTokenBytes, " bytes");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(jwt, '.');
  if (parts.size() != 3) return Refuse("not three base64url segments separated by '.'");

  // The header: which key, and which algorithm.
  ASSIGN_OR_RETURN(JsonValue header, DecodeJsonSegment(parts[0], "header"));
  ASSIGN_OR_RETURN(const std::string* alg_name, RequiredString(header, "alg"));
  if (absl::EqualsIgnoreCase(*alg_name, "none")) return Refuse("alg 'none' is not accepted");
  std::optional<Alg> alg = ParseAlg(*alg_name);
  if (!alg.has_value()) {
    return Refuse("alg ", Quote(*alg_name), " is not accepted; accepted: HS256, ES256, RS256");
  }
  if (header.Find("crit") != nullptr) return Refuse("crit: no header extension is supported");
  ASSIGN_OR_RETURN(const std::string* typ, StringMember(header, "typ"));
  if (typ != nullptr && !absl::EqualsIgnoreCase(*typ, "JWT")) return Refuse("typ must be \"JWT\"");
  ASSIGN_OR_RETURN(const std::string* kid, RequiredString(header, "kid"));
  if (!IsValidKid(*kid)) return Refuse("kid must be 1-64 characters of [A-Za-z0-9._-]");

  // The payload's tenant names the key together with kid; the rest waits for the signature.
  ASSIGN_OR_RETURN(JsonValue claims, DecodeJsonSegment(parts[1], "payload"));
  ASSIGN_OR_RETURN(const std::string* tenant, RequiredString(claims, "tenant"));
  if (absl::Status st = ValidateTenant(*tenant); !st.ok()) return Refuse(st.message());
  auto it = keys_.find(std::make_pair(*tenant, *kid));
  if (it == keys_.end()) return Refuse("unknown kid '", *kid, "' for tenant '", *tenant, "'");
  const Key& key = *it->second;
  if (key.alg != *alg) {
    return Refuse("alg '", *alg_name, "' does not match key '", *kid, "' of tenant '", *tenant,
                  "', which is ", AlgName(key.alg));
  }
  std::optional<std::string> signature = DecodeBase64Url(parts[2]);
  if (!signature.has_value()) return Refuse("signature is not base64url without padding");
  const absl::string_view signing_input(jwt.data(), parts[0].size() + 1 + parts[1].size());
  RETURN_IF_ERROR(key.CheckSignature(signing_input, *signature));

  // Claims: signed by the tenant's key from here on.
  AgentToken token;
  token.tenant = *tenant;
  token.kid = *kid;
  ASSIGN_OR_RETURN(const std::string* sub, RequiredString(claims, "sub"));
  if (sub->empty() || sub->size() > kMaxSubjectBytes || !AllOf(*sub, IsSubjectChar)) {
    return Refuse("sub must be 1-128 characters of [A-Za-z0-9._:@-]");
  }
  token.subject = *sub;
  if (!AudContainsOnestory(claims.Find("aud"))) {
    return Refuse("aud must be \"", kAgentTokenAudienceClaim, "\"");
  }

  ASSIGN_OR_RETURN(std::optional<absl::Time> exp, TimeMember(claims, "exp"));
  if (!exp.has_value()) return Refuse("exp is required");
  if (now >= *exp + kAgentTokenClockSkew) return Refuse("expired at ", FormatEpoch(*exp));
  if (*exp > now + kMaxAgentTokenLifetime + kAgentTokenClockSkew) {
    return Refuse("exp is more than ", absl::ToInt64Hours(kMaxAgentTokenLifetime), " h ahead (",
                  FormatEpoch(*exp), ")");
  }
  token.expires = *exp;
  ASSIGN_OR_RETURN(std::optional<absl::Time> nbf, TimeMember(claims, "nbf"));
  if (nbf.has_value() && now + kAgentTokenClockSkew < *nbf) {
    return Refuse("not valid before ", FormatEpoch(*nbf));
  }
  ASSIGN_OR_RETURN(std::optional<absl::Time> iat, TimeMember(claims, "iat"));
  (void)iat;  // informative only: exp and nbf bound the token's life

  ASSIGN_OR_RETURN(const std::string* audience, RequiredString(claims, "audience"));
  if (*audience == "BOT") {
    token.audience = Audience::kBot;
  } else if (*audience == "AGENT") {
    token.audience = Audience::kAgent;
  } else if (*audience == "SUPERVISOR") {
    token.audience = Audience::kSupervisor;
  } else {
    return Refuse("audience ", Quote(*audience), " is not BOT, AGENT or SUPERVISOR");
  }
  ASSIGN_OR_RETURN(const std::string* scope, RequiredString(claims, "scope"));
  ASSIGN_OR_RETURN(token.scopes, ParseScopeClaim(*scope));
  return token;
}

}  // namespace onestory::auth
