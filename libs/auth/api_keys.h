// API keys: who may call, for which tenant, with which scopes.
//
// A key is a random secret the caller sends as "authorization: Bearer <key>". The server never
// stores it: the key file holds its SHA-256 (keys are 256-bit random values, so a fast hash is
// enough; there is nothing to guess). One key per line:
//
//   # id          tenant  scopes                                    sha256 of the key
//   console-eu    acme    timeline.read,timeline.write,context.read.agent  sha256:9f86d0...
//   crm-sync      acme    timeline.write  sha256:2c26b4...  rate=50/s burst=200
//
// Fields are separated by spaces or tabs; '#' starts a comment line. tools/apikey.py makes a key
// and prints its line. After the hash, optional settings of the key's rate limit (a token
// bucket per key in each server process): `rate=<calls>/s` (a positive number up to 1,000,000,
// or `rate=unlimited`) and `burst=<calls>` (1 to 1,000,000: how many calls may come at once after
// a quiet spell). A key without them gets the server's default (--api_key_rate, --api_key_burst);
// a key with only `rate=` gets a burst of twice its rate (at least 1).
//
//   ASSIGN_OR_RETURN(ApiKeyTable table, ApiKeyTable::Parse(text));
//   const ApiKey* key = table.Find(presented);   // nullptr: unknown key
//   if (key && key->scopes.Has(Scope::kTimelineRead)) ...
//
// Thread-safe once built (immutable).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace onestory::auth {

enum class Scope : uint8_t {
  kTimelineWrite,          // "timeline.write": append, conversations, cases, consent, link
  kTimelineRead,           // "timeline.read": List, Watch, cases, journeys (as an agent sees)
  kContextReadBot,         // "context.read.bot": GetContext as a bot sees it
  kContextReadAgent,       // "context.read.agent": GetContext as an agent sees it; alerts
  kContextReadSupervisor,  // "context.read.supervisor": everything, supervisor notes included
  kIdentityAdmin,          // "identity.admin": unlink, merge, unmerge, merge suggestions
  kTenantAdmin,            // "tenant.admin": the tenant's settings (journey stages)
  kPrivacyAdmin,           // "privacy.admin": erase, export, redact, the audit log
};
inline constexpr int kScopeCount = 8;

absl::string_view ScopeName(Scope scope);

class ScopeSet {
 public:
  ScopeSet() = default;
  ScopeSet(std::initializer_list<Scope> scopes) {
    for (Scope s : scopes) Add(s);
  }
  void Add(Scope s) { bits_ |= Bit(s); }
  bool Has(Scope s) const { return (bits_ & Bit(s)) != 0; }
  bool HasAny(ScopeSet other) const { return (bits_ & other.bits_) != 0; }
  bool empty() const { return bits_ == 0; }
  // "a,b,c" in Scope order.
  std::string ToString() const;
  static ScopeSet All();

 private:
  static uint32_t Bit(Scope s) { return 1u << static_cast<int>(s); }
  uint32_t bits_ = 0;
};

// "timeline.read,context.read.bot" -> the set; INVALID_ARGUMENT naming an unknown scope.
absl::StatusOr<ScopeSet> ParseScopes(absl::string_view text);

// How fast one key may call: `per_second` calls a second on average, up to `burst` at once.
// per_second <= 0: no limit.
struct RateLimit {
  double per_second = 0;
  double burst = 0;
  bool unlimited() const { return per_second <= 0; }
  friend bool operator==(const RateLimit& a, const RateLimit& b) {
    return a.per_second == b.per_second && a.burst == b.burst;
  }
};

struct ApiKey {
  std::string id;      // Names the key in logs and the audit log; never the secret.
  std::string tenant;  // The only tenant the key may touch.
  ScopeSet scopes;
  // From the key's line; unset: the server's default. `rate=unlimited` is per_second 0.
  std::optional<double> rate_per_second = std::nullopt;
  std::optional<double> burst = std::nullopt;
  // The key's limit, its own settings over `fallback`.
  RateLimit LimitOr(const RateLimit& fallback) const;
};

// A token bucket: `limit.burst` tokens at most, refilled at `limit.per_second`. Not
// thread-safe (callers hold a lock); time is passed in so tests can move it.
class TokenBucket {
 public:
  TokenBucket(RateLimit limit, absl::Time now);
  // Takes one token: zero when there was one, else how long until there is (nothing taken).
  absl::Duration Take(absl::Time now);
  // A new limit (a reloaded key file); the tokens banked stay, up to the new burst.
  void Reset(RateLimit limit, absl::Time now);
  const RateLimit& limit() const { return limit_; }

 private:
  void Refill(absl::Time now);
  RateLimit limit_;
  double tokens_;
  absl::Time last_;
};

// Lower-case hex SHA-256 of `key`.
std::string Sha256Hex(absl::string_view key);

// A new random key: "os_" + 43 characters of base64url (256 bits from the OS).
std::string GenerateKey();

class ApiKeyTable {
 public:
  // Errors name the line: a wrong field count, an invalid id or tenant, an unknown scope, a
  // hash that is not "sha256:" + 64 hex digits, a duplicate id or hash, an unknown or malformed
  // setting after the hash.
  static absl::StatusOr<ApiKeyTable> Parse(absl::string_view text);

  void Add(std::string sha256_hex, ApiKey key);
  // The key whose hash matches; nullptr for an unknown key.
  const ApiKey* Find(absl::string_view presented) const;
  size_t size() const { return by_hash_.size(); }

 private:
  absl::flat_hash_map<std::string, ApiKey> by_hash_;  // hex SHA-256 -> key
};

}  // namespace onestory::auth
