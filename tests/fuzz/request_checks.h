// Checks shared by the fuzz targets that read requests: the tenant and the customer every
// request names, and the Redis keys they lead to.
//
//   CheckTenantAndCustomer(request.tenant(), request.customer());
//
// A tenant or customer id that passes validation holds no '{', '}' or ':', so the keys built
// from it keep one hash tag of that tenant and customer; an identifier that normalizes builds a
// key whose hash tag is the tenant's, the type's and the percent-encoded value's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/common/validation.h"
#include "libs/identity/normalize.h"
#include "libs/keys/key_schema.h"
#include "onestory/v1/common.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace onestory::fuzz {

// "Now" for the checks that compare with it: fixed (2023-11-14T22:13:20Z), so a saved crash
// reproduces.
inline constexpr int64_t kNowMs = 1700000000000;

inline bool HasKeySeparator(absl::string_view s) {
  return s.find_first_of("{}:") != absl::string_view::npos;
}

// What Redis Cluster hashes: the text between the first '{' and the next '}', when not empty.
inline absl::string_view HashTag(absl::string_view key) {
  size_t open = key.find('{');
  if (open == absl::string_view::npos) return key;
  size_t close = key.find('}', open + 1);
  if (close == absl::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

inline void CheckValidId(absl::string_view id) {
  FUZZ_CHECK(!id.empty() && id.size() <= 64 && !HasKeySeparator(id));
}

// A refusal is INVALID_ARGUMENT and names the field first.
inline void CheckRefusal(const absl::Status& st, absl::string_view field) {
  FUZZ_CHECK(absl::IsInvalidArgument(st));
  FUZZ_CHECK(absl::StartsWith(st.message(), field));
}

// The index key of an identifier, normalized or not: one hash tag, closed at the end.
inline void CheckIdentifierKey(absl::string_view tenant, const v1::Identifier& id) {
  std::string key = keys::IdentifierKey(tenant, id.type(), id.value());
  std::string encoded = keys::EncodeKeyPart(id.value());
  FUZZ_CHECK(HashTag(key) ==
             absl::StrCat(tenant, ":i:", keys::IdentifierTypeName(id.type()), ":", encoded));
  FUZZ_CHECK(std::count(key.begin(), key.end(), '{') == 1);
  FUZZ_CHECK(std::count(key.begin(), key.end(), '}') == 1 && key.back() == '}');
}

// Validates the tenant and the customer as the stores do, and checks what passes.
inline void CheckTenantAndCustomer(const std::string& tenant, const v1::CustomerRef& ref) {
  absl::Status tenant_status = ValidateTenant(tenant);
  if (tenant_status.ok()) {
    CheckValidId(tenant);
  } else {
    CheckRefusal(tenant_status, "tenant");
  }
  switch (ref.ref_case()) {
    case v1::CustomerRef::kCustomerId: {
      const std::string& id = ref.customer_id();
      absl::Status st = ValidateCustomerId("customer.customer_id", id);
      if (!st.ok()) {
        CheckRefusal(st, "customer.customer_id");
        break;
      }
      CheckValidId(id);
      if (!tenant_status.ok()) break;
      keys::CustomerKeys keys(tenant, id);
      FUZZ_CHECK(keys.profile() == absl::StrCat("os:{", tenant, ":c:", id, "}:p"));
      FUZZ_CHECK(HashTag(keys.timeline()) == absl::StrCat(tenant, ":c:", id));
      FUZZ_CHECK(HashTag(keys.merge_staging(id)) == absl::StrCat(tenant, ":c:", id));
      break;
    }
    case v1::CustomerRef::kIdentifier: {
      auto id = identity::NormalizeIdentifier("customer.identifier", ref.identifier());
      if (!id.ok()) {
        CheckRefusal(id.status(), "customer.identifier");
        break;
      }
      FUZZ_CHECK(id->type() == ref.identifier().type());
      FUZZ_CHECK(ValidateText("value", id->value(), identity::kMaxIdentifierBytes, false).ok());
      if (tenant_status.ok()) CheckIdentifierKey(tenant, *id);
      break;
    }
    case v1::CustomerRef::REF_NOT_SET:
      break;
  }
}

}  // namespace onestory::fuzz
