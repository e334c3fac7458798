// Agent tokens: short-lived JWTs (RFC 7519) that the integrator's backend signs for a browser
// (an agent's or a supervisor's console) or a bot, so they can call OneStory without holding an
// API key.
//
// The integrator signs with a key per tenant: HS256 (a shared secret), ES256 (P-256) or RS256
// (RSA, at least 2048 bits; for both, OneStory holds only the public key). The keys file has one
// key per line; fields are separated by spaces or tabs, '#' starts a comment line:
//
//   # tenant  kid       alg    key
//   acme      2026-05   HS256  q3Vb...   (base64url, at least 32 bytes once decoded)
//   acme      web-1     ES256  keys/acme-web-1.pem    (a P-256 public key, PEM)
//   globex    k1        RS256  /etc/onestory/globex.pem   (an RSA public key, PEM)
//
// A relative PEM path is relative to the keys file's directory. tools/agent_token.py makes a
// secret and its line, and mints tokens. A token looks like:
//
//   header  {"alg":"ES256","kid":"web-1","typ":"JWT"}
//   payload {"tenant":"acme","sub":"agent-7","aud":"onestory","exp":1767000000,
//            "audience":"AGENT","scope":"timeline.read context.read.agent"}
//
// and is sent as "authorization: Bearer <jwt>", where an API key would be:
//
//   ASSIGN_OR_RETURN(AgentTokenKeys keys, AgentTokenKeys::FromFile(flag_path));
//   if (LooksLikeJwt(bearer)) {
//     ASSIGN_OR_RETURN(AgentToken token, keys.Verify(bearer, absl::Now()));
//     if (token.scopes.Has(Scope::kTimelineRead)) ...
//   }
//
// Verify accepts a token only when all of these hold (anything else is UNAUTHENTICATED, its
// message the reason in words, safe to return to the caller: it never holds a key, a signature
// or more than a short quote of what the token says):
//   - at most kMaxAgentTokenBytes, three base64url segments without padding, header and payload
//     JSON objects (a key given twice is refused);
//   - header: `alg` HS256, ES256 or RS256 and the algorithm of the key it names (so a public key
//     can never serve as an HMAC secret), `kid` present, `typ` absent or "JWT" (any case), no
//     `crit` (no extension is understood);
//   - the key is the one of the payload's `tenant` claim and the header's `kid`;
//   - the signature: HMAC-SHA256 (compared in constant time), ECDSA P-256 SHA-256 as 64 bytes
//     r||s (RFC 7518 §3.4; a DER signature is refused), or RSASSA-PKCS1-v1_5 SHA-256;
//   - claims, checked only once the signature is good: `tenant`; `sub` (1-128 characters of
//     [A-Za-z0-9._:@-]); `aud` "onestory" or an array holding it; `exp` (seconds since the
//     epoch); `nbf` if present; `iat` a number if present (otherwise ignored); `audience` BOT,
//     AGENT or SUPERVISOR; `scope` one or more API-key scope names separated by spaces.
//
// Clocks: the integrator's and ours may differ by up to kAgentTokenClockSkew (30 s). A token is
// expired once now >= exp + 30 s, not yet valid while now + 30 s < nbf, and refused when exp is
// more than kMaxAgentTokenLifetime (12 h) + 30 s ahead of now: tokens are meant to be short-lived,
// so a far expiry is a mistake or a token minted to last.
//
// Thread-safe once built (immutable); the server builds a new table on SIGHUP and swaps it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/auth/api_keys.h"

namespace onestory::auth {

inline constexpr size_t kMaxAgentTokenBytes = 8 * 1024;
inline constexpr absl::Duration kAgentTokenClockSkew = absl::Seconds(30);
inline constexpr absl::Duration kMaxAgentTokenLifetime = absl::Hours(12);
// The only `aud` accepted.
inline constexpr absl::string_view kAgentTokenAudienceClaim = "onestory";

// Who holds the token: what GetContext shows and which notes it sees. (The proto's Audience has
// the same names; the server maps one onto the other.)
enum class Audience : uint8_t {
  kBot,         // "BOT"
  kAgent,       // "AGENT"
  kSupervisor,  // "SUPERVISOR"
};

// "BOT", "AGENT" or "SUPERVISOR".
absl::string_view AudienceName(Audience audience);

// What a verified token says.
struct AgentToken {
  std::string tenant;                    // The `tenant` claim: the only tenant the token may touch.
  std::string subject;                   // `sub`: the agent or bot, for logs and the audit log.
  Audience audience = Audience::kAgent;  // `audience`
  ScopeSet scopes;                       // `scope`, never empty
  std::string kid;                       // The key that signed it.
  absl::Time expires;                    // `exp` (without the clock skew allowed)
};

// True when `bearer` has the shape of a JWT: three segments of base64url characters separated by
// '.', the first two non-empty (the third is empty in an unsigned token, which Verify then
// refuses by name). An API key ("os_" + base64url) has no '.'. Says nothing of validity.
bool LooksLikeJwt(absl::string_view bearer);

class AgentTokenKeys {
 public:
  // An empty table: every token is refused as an unknown kid.
  AgentTokenKeys() = default;

  // The keys file's text; relative PEM paths are read from `base_dir` (empty: the working
  // directory). Errors are
  // INVALID_ARGUMENT starting "line <n>: ": a field count other than 4, a tenant that
  // ValidateTenant refuses, a kid that is not 1-64 characters of [A-Za-z0-9._-], an unknown
  // algorithm, an HS256 secret that is not base64url or is shorter than 32 bytes, a PEM file that
  // cannot be read or holds no public key, an ES256 key that is not P-256, an RS256 key that is
  // not RSA or has fewer than 2048 bits, a (tenant, kid) on an earlier line.
  static absl::StatusOr<AgentTokenKeys> Parse(absl::string_view text, absl::string_view base_dir);

  // Reads `path` and parses it with its directory as base_dir. NOT_FOUND (or another code from
  // the read) naming the path when it cannot be read; Parse's errors, prefixed with the path.
  static absl::StatusOr<AgentTokenKeys> FromFile(const std::string& path);

  // The token's claims when it passes every check in this file's opening comment at `now`;
  // otherwise UNAUTHENTICATED "agent token: <reason>" (INTERNAL only when libcrypto itself
  // fails, e.g. out of memory). Thread-safe.
  absl::StatusOr<AgentToken> Verify(absl::string_view jwt, absl::Time now) const;

  size_t size() const { return keys_.size(); }

 private:
  struct Key;  // One line of the file: the algorithm and its secret or public key.

  // (tenant, kid) -> key. Shared, not copied, between copies of the table: keys never change.
  absl::flat_hash_map<std::pair<std::string, std::string>, std::shared_ptr<const Key>> keys_;
};

}  // namespace onestory::auth
