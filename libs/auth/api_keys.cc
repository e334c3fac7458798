#include "libs/auth/api_keys.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/validation.h"

namespace onestory::auth {
namespace {

constexpr std::array<absl::string_view, kScopeCount> kScopeNames = {
    "timeline.write",          "timeline.read",  "context.read.bot", "context.read.agent",
    "context.read.supervisor", "identity.admin", "tenant.admin",     "privacy.admin"};

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

constexpr double kMaxRate = 1000000;

// "rate=<calls>/s" or "rate=unlimited", "burst=<calls>" into `key`; the error says what is wrong.
absl::Status ParseSetting(absl::string_view setting, ApiKey* key) {
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(setting, absl::MaxSplits('=', 1));
  if (kv.first == "rate") {
    if (key->rate_per_second.has_value()) return absl::InvalidArgumentError("rate= given twice");
    if (kv.second == "unlimited") {
      key->rate_per_second = 0;
      return absl::OkStatus();
    }
    absl::string_view number = kv.second;
    double rate = 0;
    if (!absl::ConsumeSuffix(&number, "/s") || !absl::SimpleAtod(number, &rate) ||
        !(rate > 0 && rate <= kMaxRate)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rate: want <calls>/s with calls above 0 and at most 1000000 (e.g. rate=50/s), or "
          "rate=unlimited; got \"",
          absl::CEscape(kv.second), "\""));
    }
    key->rate_per_second = rate;
    return absl::OkStatus();
  }
  if (kv.first == "burst") {
    if (key->burst.has_value()) return absl::InvalidArgumentError("burst= given twice");
    int64_t burst = 0;
    if (!absl::SimpleAtoi(kv.second, &burst) || burst < 1 || burst > kMaxRate) {
      return absl::InvalidArgumentError(
          absl::StrCat("burst: want a whole number of calls from 1 to 1000000; got \"",
                       absl::CEscape(kv.second), "\""));
    }
    key->burst = static_cast<double>(burst);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown setting \"", absl::CEscape(setting),
                                                 "\" after the hash; known: rate=, burst="));
}

}  // namespace

RateLimit ApiKey::LimitOr(const RateLimit& fallback) const {
  RateLimit out = fallback;
  if (rate_per_second.has_value()) {
    out.per_second = *rate_per_second;
    out.burst = std::max(1.0, 2 * *rate_per_second);
  }
  if (burst.has_value()) out.burst = *burst;
  return out;
}

TokenBucket::TokenBucket(RateLimit limit, absl::Time now)
    : limit_(limit), tokens_(limit.burst), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now > last_) {
    tokens_ =
        std::min(limit_.burst, tokens_ + absl::ToDoubleSeconds(now - last_) * limit_.per_second);
    last_ = now;
  }
}

absl::Duration TokenBucket::Take(absl::Time now) {
  if (limit_.unlimited()) return absl::ZeroDuration();
  Refill(now);
  // The refill is a sum of doubles: a token that is due counts though it is 0.9999999 of one.
  if (tokens_ >= 1 - 1e-9) {
    tokens_ = std::max(0.0, tokens_ - 1);
    return absl::ZeroDuration();
  }
  // Never zero: zero means "taken".
  return std::max(absl::Nanoseconds(1), absl::Seconds((1 - tokens_) / limit_.per_second));
}

void TokenBucket::Reset(RateLimit limit, absl::Time now) {
  Refill(now);
  limit_ = limit;
  tokens_ = std::min(tokens_, limit_.burst);
}

absl::string_view ScopeName(Scope scope) { return kScopeNames[static_cast<int>(scope)]; }

std::string ScopeSet::ToString() const {
  std::vector<absl::string_view> names;
  for (int i = 0; i < kScopeCount; ++i) {
    if (Has(static_cast<Scope>(i))) names.push_back(kScopeNames[i]);
  }
  return absl::StrJoin(names, ",");
}

ScopeSet ScopeSet::All() {
  ScopeSet all;
  for (int i = 0; i < kScopeCount; ++i) all.Add(static_cast<Scope>(i));
  return all;
}

absl::StatusOr<ScopeSet> ParseScopes(absl::string_view text) {
  ScopeSet set;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    int found = -1;
    for (int i = 0; i < kScopeCount; ++i) {
      if (kScopeNames[i] == name) found = i;
    }
    if (found < 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown scope \"", absl::CEscape(name),
                                                     "\"; known: ", ScopeSet::All().ToString()));
    }
    set.Add(static_cast<Scope>(found));
  }
  if (set.empty()) return absl::InvalidArgumentError("no scopes");
  return set;
}

std::string Sha256Hex(absl::string_view key) {
  // Fetched once: EVP_sha256() makes every EVP_Digest look the algorithm up again under a
  // lock (OpenSSL 3), which showed in the per-call cost of authentication.
  static const EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const EVP_MD* sha256 = fetched != nullptr ? fetched : EVP_sha256();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), digest, &len, sha256, nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string GenerateKey() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) std::abort();  // no entropy: nothing safe to do
  std::string encoded;
  absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes),
                            &encoded);
  return absl::StrCat("os_", encoded);
}

absl::StatusOr<ApiKeyTable> ApiKeyTable::Parse(absl::string_view text) {
  ApiKeyTable table;
  absl::flat_hash_map<std::string, int> ids;
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
    // Settings after the hash are name=value; anything else means the fields are off (an
    // inline comment, scopes separated by ", ").
    bool fields_ok = f.size() >= 4 && (f.size() == 4 || absl::StartsWith(f[3], "sha256:"));
    for (size_t i = 4; fields_ok && i < f.size(); ++i) {
      fields_ok = absl::StrContains(f[i], '=');
    }
    if (!fields_ok) {
      return fail(
          "want 4 fields: <id> <tenant> <scope,scope,...> sha256:<hex>, then optionally "
          "rate=<calls>/s and burst=<calls>");
    }
    if (absl::Status st = ValidateToken("id", f[0], 64, false); !st.ok()) {
      return fail(st.message());
    }
    if (absl::Status st = ValidateTenant(f[1]); !st.ok()) return fail(st.message());
    absl::StatusOr<ScopeSet> scopes = ParseScopes(f[2]);
    if (!scopes.ok()) return fail(scopes.status().message());
    if (!absl::ConsumePrefix(&f[3], "sha256:") || !IsHex64(f[3])) {
      return fail("the key hash must be sha256: followed by 64 lower-case hex digits");
    }
    if (auto [it, added] = ids.emplace(std::string(f[0]), line_no); !added) {
      return fail(absl::StrCat("key id ", f[0], " also on line ", it->second));
    }
    if (table.by_hash_.contains(f[3])) return fail("the same key hash is on an earlier line");
    ApiKey key;
    key.id = std::string(f[0]);
    key.tenant = std::string(f[1]);
    key.scopes = *scopes;
    for (size_t i = 4; i < f.size(); ++i) {
      if (absl::Status st = ParseSetting(f[i], &key); !st.ok()) return fail(st.message());
    }
    table.Add(std::string(f[3]), std::move(key));
  }
  return table;
}

void ApiKeyTable::Add(std::string sha256_hex, ApiKey key) {
  by_hash_.insert_or_assign(std::move(sha256_hex), std::move(key));
}

const ApiKey* ApiKeyTable::Find(absl::string_view presented) const {
  if (presented.empty() || presented.size() > 512) return nullptr;
  auto it = by_hash_.find(Sha256Hex(presented));
  return it == by_hash_.end() ? nullptr : &it->second;
}

}  // namespace onestory::auth
