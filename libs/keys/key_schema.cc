#include "libs/keys/key_schema.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace onestory::keys {
namespace {

struct TypeName {
  v1::IdentifierType type;
  absl::string_view name;
};
constexpr TypeName kTypeNames[] = {
    {v1::IDENTIFIER_TYPE_PHONE, "phone"},          {v1::IDENTIFIER_TYPE_EMAIL, "email"},
    {v1::IDENTIFIER_TYPE_APP_USER_ID, "app"},      {v1::IDENTIFIER_TYPE_DEVICE_ID, "device"},
    {v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat"},    {v1::IDENTIFIER_TYPE_LOYALTY_ID, "loyalty"},
    {v1::IDENTIFIER_TYPE_SOCIAL_HANDLE, "social"}, {v1::IDENTIFIER_TYPE_CRM_ID, "crm"},
};

// FNV-1a: stable across builds and machines (every instance must pick the same bucket).
uint32_t Fnv1a(absl::string_view bytes) {
  uint32_t h = 2166136261u;
  for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return h;
}

}  // namespace

CustomerKeys::CustomerKeys(absl::string_view tenant, absl::string_view customer_id)
    : prefix_(absl::StrCat("os:{", tenant, ":c:", customer_id, "}:")) {}

TenantKeys::TenantKeys(absl::string_view tenant)
    : alerts_(absl::StrCat("os:{", tenant, ":a}:")),
      journey_(absl::StrCat("os:{", tenant, ":j}:")),
      audit_(absl::StrCat("os:{", tenant, ":au}:")),
      retention_(absl::StrCat("os:{", tenant, ":r}:")) {}

TenantKeys::TenantKeys(absl::string_view tenant, int bucket)
    : alerts_(absl::StrCat("os:{", tenant, ":a:", bucket, "}:")),
      journey_(absl::StrCat("os:{", tenant, ":j:", bucket, "}:")),
      audit_(absl::StrCat("os:{", tenant, ":au:", bucket, "}:")),
      retention_(absl::StrCat("os:{", tenant, ":r:", bucket, "}:")) {}

int TenantBucket(absl::string_view customer_id) {
  return static_cast<int>(Fnv1a(customer_id) % kTenantBuckets);
}

int DueBucket(absl::string_view tenant, absl::string_view customer_id) {
  return static_cast<int>(Fnv1a(absl::StrCat(tenant, "|", customer_id)) % kDueBuckets);
}

// Bucket n's hash tag "due:<n>.<k>": k is the smallest that puts the tag's slot in the n-th
// sixteenth of the 16,384 slots, so the buckets spread over a cluster's primaries as evenly as
// its slot ranges do ("due:<n>" alone put 10 of the 16 in the first third). Checked by
// tests/unit/libs/keys/key_schema_test.cc.
constexpr const char* kDueTags[kDueBuckets] = {
    "due:0.60", "due:1.63", "due:2.40",  "due:3.43",  "due:4.1",   "due:5.2",
    "due:6.23", "due:7.20", "due:8.40",  "due:9.43",  "due:10.10", "due:11.13",
    "due:12.22", "due:13.21", "due:14.0", "due:15.3"};

std::string DuePromisesKey(int bucket) { return absl::StrCat("os:{", kDueTags[bucket], "}:z"); }
std::string DuePromisesAppliedKey(int bucket) {
  return absl::StrCat("os:{", kDueTags[bucket], "}:ob");
}
std::string DuePromisesAppliedAtKey(int bucket) {
  return absl::StrCat("os:{", kDueTags[bucket], "}:ob.t");
}

std::string TenantRegistryKey() { return "os:{tenants}:all"; }
std::string BucketUpgradeKey() { return "os:{tenants}:upgraded"; }

std::string DuePromisesKey() { return "os:{alerts}:due"; }
std::string DuePromisesAppliedKey() { return "os:{alerts}:due.ob"; }
std::string DuePromisesAppliedAtKey() { return "os:{alerts}:due.ob.t"; }

std::string PendingOutboxKey(absl::string_view tenant, absl::string_view customer_id) {
  return PendingOutboxKey(
      static_cast<int>(Fnv1a(absl::StrCat(tenant, "|", customer_id)) % kOutboxBuckets));
}

std::string PendingOutboxKey(int bucket) { return absl::StrCat("os:{ob:", bucket, "}:pending"); }

std::string MergeKey(absl::string_view tenant, absl::string_view merge_id) {
  return absl::StrCat("os:{", tenant, ":m:", merge_id, "}");
}

std::string PendingMergesKey() { return "os:{merges}:pending"; }

std::string PendingErasuresKey() { return "os:{erasures}:pending"; }
std::string PendingRedactionsKey() { return "os:{redactions}:pending"; }
std::string RedactionSequenceKey() { return "os:{redactions}:seq"; }

std::string IdentifierKey(absl::string_view tenant, v1::IdentifierType type,
                          absl::string_view normalized_value) {
  return absl::StrCat("os:{", tenant, ":i:", IdentifierTypeName(type), ":",
                      EncodeKeyPart(normalized_value), "}");
}

absl::string_view IdentifierTypeName(v1::IdentifierType type) {
  for (const auto& t : kTypeNames) {
    if (t.type == type) return t.name;
  }
  return {};
}

v1::IdentifierType IdentifierTypeFromName(absl::string_view name) {
  for (const auto& t : kTypeNames) {
    if (t.name == name) return t.type;
  }
  return v1::IDENTIFIER_TYPE_UNSPECIFIED;
}

std::string EncodeKeyPart(absl::string_view raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace onestory::keys
