#include "libs/auth/api_keys.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
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

}  // namespace

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
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr);
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
    if (f.size() != 4) {
      return fail("want 4 fields: <id> <tenant> <scope,scope,...> sha256:<hex>");
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
    table.Add(std::string(f[3]), ApiKey{std::string(f[0]), std::string(f[1]), *scopes});
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
