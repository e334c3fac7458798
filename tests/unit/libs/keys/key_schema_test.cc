#include "libs/keys/key_schema.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "libs/redis/slot.h"
#include "onestory/v1/common.pb.h"

namespace onestory::keys {
namespace {

// The Redis Cluster hash tag of a key: the text between the first '{' and the next '}', or the
// whole key when there is none.
std::string HashTag(absl::string_view key) {
  size_t open = key.find('{');
  if (open == absl::string_view::npos) return std::string(key);
  size_t close = key.find('}', open + 1);
  if (close == absl::string_view::npos || close == open + 1) return std::string(key);
  return std::string(key.substr(open + 1, close - open - 1));
}

std::vector<v1::IdentifierType> AllKnownTypes() {
  std::vector<v1::IdentifierType> types;
  for (int t = v1::IdentifierType_MIN; t <= v1::IdentifierType_MAX; ++t) {
    if (t != v1::IDENTIFIER_TYPE_UNSPECIFIED && v1::IdentifierType_IsValid(t)) {
      types.push_back(static_cast<v1::IdentifierType>(t));
    }
  }
  return types;
}

// ---------------------------------------------------------------------------------------------
// CustomerKeys

TEST(CustomerKeysTest, Layout) {
  CustomerKeys k("acme", "cus_1");
  EXPECT_EQ(k.profile(), "os:{acme:c:cus_1}:p");
  EXPECT_EQ(k.identifiers(), "os:{acme:c:cus_1}:ids");
  EXPECT_EQ(k.timeline(), "os:{acme:c:cus_1}:tl");
  EXPECT_EQ(k.dedup(), "os:{acme:c:cus_1}:dd");
  EXPECT_EQ(k.conversations(), "os:{acme:c:cus_1}:cv");
  EXPECT_EQ(k.channel(), "os:{acme:c:cus_1}:n");
}

TEST(CustomerKeysTest, AllKeysShareOneHashTagAndAreDistinct) {
  CustomerKeys k("acme", "cus_1");
  std::vector<std::string> all = {k.profile(), k.identifiers(),   k.timeline(),
                                  k.dedup(),   k.conversations(), k.channel()};
  absl::flat_hash_set<std::string> distinct(all.begin(), all.end());
  EXPECT_EQ(distinct.size(), all.size());
  for (const std::string& key : all) {
    EXPECT_EQ(HashTag(key), "acme:c:cus_1") << key;
    EXPECT_EQ(std::count(key.begin(), key.end(), '{'), 1) << key;
    EXPECT_EQ(std::count(key.begin(), key.end(), '}'), 1) << key;
  }
}

TEST(CustomerKeysTest, TenantsAndCustomersDoNotShareKeys) {
  EXPECT_NE(CustomerKeys("acme", "cus_1").profile(), CustomerKeys("acme", "cus_2").profile());
  EXPECT_NE(CustomerKeys("acme", "cus_1").profile(), CustomerKeys("globex", "cus_1").profile());
  EXPECT_NE(HashTag(CustomerKeys("acme", "cus_1").timeline()),
            HashTag(CustomerKeys("globex", "cus_1").timeline()));
}

TEST(CustomerKeysTest, CustomerKeysNeverCollideWithIdentifierKeys) {
  // "c" and "i" separate the two key families even for look-alike ids.
  std::string customer = CustomerKeys("acme", "phone").profile();
  std::string identifier = IdentifierKey("acme", v1::IDENTIFIER_TYPE_PHONE, "p");
  EXPECT_NE(customer, identifier);
  EXPECT_NE(HashTag(customer), HashTag(identifier));
}

// ---------------------------------------------------------------------------------------------
// IdentifierKey

TEST(TenantKeysTest, BucketLayout) {
  TenantKeys t("acme", 3);
  EXPECT_EQ(t.alert_log(), "os:{acme:a:3}:log");
  EXPECT_EQ(t.journey_counters(), "os:{acme:j:3}:n");
  EXPECT_EQ(t.audit_log(), "os:{acme:au:3}:log");
  EXPECT_EQ(t.activity(), "os:{acme:r:3}:active");
  EXPECT_EQ(TenantKeys("acme").alert_log(), "os:{acme:a}:log");
}

TEST(DuePromisesKeyTest, BucketsStableAndSpread) {
  EXPECT_EQ(DuePromisesKey(3), "os:{due:3.43}:z");
  EXPECT_EQ(DuePromisesAppliedKey(3), "os:{due:3.43}:ob");
  EXPECT_EQ(DuePromisesAppliedAtKey(3), "os:{due:3.43}:ob.t");
  // Bucket n's keys are in the n-th sixteenth of the slots: spread over a cluster's primaries.
  for (int b = 0; b < kDueBuckets; ++b) {
    const int slot = redis::KeySlot(DuePromisesKey(b));
    EXPECT_EQ(slot / (16384 / kDueBuckets), b) << DuePromisesKey(b);
    EXPECT_EQ(redis::KeySlot(DuePromisesAppliedKey(b)), slot);
    EXPECT_EQ(redis::KeySlot(DuePromisesAppliedAtKey(b)), slot);
  }
  EXPECT_EQ(DuePromisesKey(), "os:{alerts}:due");  // before buckets, read to upgrade
  EXPECT_EQ(TenantRegistryKey(), "os:{tenants}:all");
  // The bucket of "<tenant>|<customer>": the same on every instance, and spread.
  EXPECT_EQ(DueBucket("acme", "cus_1"), DueBucket("acme", "cus_1"));
  std::set<int> seen;
  for (int i = 0; i < 1000; ++i) {
    int b = DueBucket("acme", absl::StrCat("cus_", i));
    ASSERT_GE(b, 0);
    ASSERT_LT(b, kDueBuckets);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kDueBuckets));
}

TEST(TenantBucketTest, StableInRangeAndSpread) {
  // Every instance of every build must pick the same bucket: these values are part of the
  // stored layout.
  EXPECT_EQ(TenantBucket("cus_1"), 2);
  EXPECT_EQ(TenantBucket("cus_2"), 15);
  std::set<int> seen;
  for (int i = 0; i < 1000; ++i) {
    int b = TenantBucket(absl::StrCat("cus_", i));
    ASSERT_GE(b, 0);
    ASSERT_LT(b, kTenantBuckets);
    seen.insert(b);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kTenantBuckets));
}

TEST(IdentifierKeyTest, Layout) {
  EXPECT_EQ(IdentifierKey("acme", v1::IDENTIFIER_TYPE_PHONE, "14155550100"),
            "os:{acme:i:phone:14155550100}");
  EXPECT_EQ(IdentifierKey("acme", v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"),
            "os:{acme:i:email:ann@example.com}");
  EXPECT_EQ(IdentifierKey("acme", v1::IDENTIFIER_TYPE_LOYALTY_ID, "AB1234"),
            "os:{acme:i:loyalty:AB1234}");
}

TEST(IdentifierKeyTest, HostileValuesCannotEscapeTheHashTag) {
  const std::vector<std::string> hostile = {
      "a{b",
      "a}b",
      "a:b",
      "a b",
      "a\nb",
      "a*b",
      "a%b",
      "}",
      "{",
      "}{",
      "{}",
      "x}:os:{globex:c:cus_2",
      "cus_1}:p",
      "*",
      "?[a-z]",
      "\r\n*1\r\n$8\r\nFLUSHALL\r\n",
      std::string("nul\0byte", 8),
      "\xff\xfe",
      "caf\xc3\xa9",
  };
  for (v1::IdentifierType type : AllKnownTypes()) {
    const std::string tag_prefix = absl::StrCat("acme:i:", IdentifierTypeName(type), ":");
    for (const std::string& value : hostile) {
      std::string key = IdentifierKey("acme", type, value);
      SCOPED_TRACE(absl::StrCat("type ", static_cast<int>(type), " key ", key));
      EXPECT_EQ(std::count(key.begin(), key.end(), '{'), 1);
      EXPECT_EQ(std::count(key.begin(), key.end(), '}'), 1);
      EXPECT_TRUE(absl::StartsWith(key, absl::StrCat("os:{", tag_prefix)));
      EXPECT_TRUE(absl::EndsWith(key, "}"));
      // The tag is the identifier's, and the encoded value adds no separator of its own.
      std::string tag = HashTag(key);
      ASSERT_TRUE(absl::StartsWith(tag, tag_prefix));
      absl::string_view encoded = absl::string_view(tag).substr(tag_prefix.size());
      EXPECT_EQ(encoded, EncodeKeyPart(value));
      for (char c : encoded) {
        bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '+' || c == '-' || c == '%';
        EXPECT_TRUE(safe) << "unencoded byte " << static_cast<int>(static_cast<unsigned char>(c));
      }
    }
  }
}

TEST(IdentifierKeyTest, DifferentRawValuesNeverShareAKey) {
  const std::vector<std::string> values = {
      "a:b", "a%3Ab", "a%253Ab", "a%3ab", "A:B", "a b", "a+b", "a%20b", "a%2520b", "a",
      "a ",  " a",    "a\n",     "a%0A",  "",    "%",   "%25", "%2525", "ab",      "a.b",
  };
  absl::flat_hash_map<std::string, std::string> seen;  // key -> value
  for (const std::string& value : values) {
    std::string key = IdentifierKey("acme", v1::IDENTIFIER_TYPE_APP_USER_ID, value);
    auto [it, inserted] = seen.emplace(key, value);
    EXPECT_TRUE(inserted) << "\"" << value << "\" and \"" << it->second << "\" share " << key;
  }
}

TEST(IdentifierKeyTest, TypeAndTenantArePartOfTheKey) {
  absl::flat_hash_set<std::string> keys;
  for (v1::IdentifierType type : AllKnownTypes()) {
    keys.insert(IdentifierKey("acme", type, "same"));
    keys.insert(IdentifierKey("globex", type, "same"));
  }
  EXPECT_EQ(keys.size(), 2 * AllKnownTypes().size());
}

// ---------------------------------------------------------------------------------------------
// EncodeKeyPart

TEST(EncodeKeyPartTest, KeepsUnreservedCharacters) {
  EXPECT_EQ(EncodeKeyPart("Ann.B_c@example.com+1-2"), "Ann.B_c@example.com+1-2");
  EXPECT_EQ(EncodeKeyPart("0123456789"), "0123456789");
  EXPECT_EQ(EncodeKeyPart(""), "");
}

TEST(EncodeKeyPartTest, PercentEncodesEverythingElseAsUpperCaseHex) {
  EXPECT_EQ(EncodeKeyPart("a:b"), "a%3Ab");
  EXPECT_EQ(EncodeKeyPart("%"), "%25");
  EXPECT_EQ(EncodeKeyPart("a%3Ab"), "a%253Ab");
  EXPECT_EQ(EncodeKeyPart("{}"), "%7B%7D");
  EXPECT_EQ(EncodeKeyPart(" \n*"), "%20%0A%2A");
  EXPECT_EQ(EncodeKeyPart(absl::string_view("\0", 1)), "%00");
  EXPECT_EQ(EncodeKeyPart("\xff"), "%FF");
  EXPECT_EQ(EncodeKeyPart("caf\xc3\xa9"), "caf%C3%A9");
}

// ---------------------------------------------------------------------------------------------
// IdentifierTypeName / IdentifierTypeFromName

TEST(IdentifierTypeNameTest, KnownNames) {
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_PHONE), "phone");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_EMAIL), "email");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_APP_USER_ID), "app");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_DEVICE_ID), "device");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_CHAT_SESSION), "chat");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_LOYALTY_ID), "loyalty");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_SOCIAL_HANDLE), "social");
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_CRM_ID), "crm");
}

TEST(IdentifierTypeNameTest, EveryTypeHasADistinctNameThatRoundTrips) {
  absl::flat_hash_set<std::string> names;
  for (v1::IdentifierType type : AllKnownTypes()) {
    absl::string_view name = IdentifierTypeName(type);
    EXPECT_FALSE(name.empty()) << "type " << type;
    // The identifiers hash splits "<type name>:<value>" at the first ':'.
    EXPECT_FALSE(absl::StrContains(name, ':')) << name;
    EXPECT_TRUE(names.insert(std::string(name)).second) << "duplicate name " << name;
    EXPECT_EQ(IdentifierTypeFromName(name), type) << name;
  }
  EXPECT_EQ(names.size(), 8u);
}

TEST(IdentifierTypeNameTest, UnspecifiedAndUnknownTypesHaveNoName) {
  EXPECT_EQ(IdentifierTypeName(v1::IDENTIFIER_TYPE_UNSPECIFIED), "");
  EXPECT_EQ(IdentifierTypeName(static_cast<v1::IdentifierType>(99)), "");
  EXPECT_EQ(IdentifierTypeName(static_cast<v1::IdentifierType>(-1)), "");
}

TEST(IdentifierTypeFromNameTest, UnknownNamesAreUnspecified) {
  for (absl::string_view name : {"", "fax", "Phone", "PHONE", "phone ", "phon", "phone:", "1"}) {
    EXPECT_EQ(IdentifierTypeFromName(name), v1::IDENTIFIER_TYPE_UNSPECIFIED) << name;
  }
}

}  // namespace
}  // namespace onestory::keys
