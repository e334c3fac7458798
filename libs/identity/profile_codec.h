// Profile <-> Redis hash fields.
//
// The profile hash (keys::CustomerKeys::profile()) holds:
//   created_at, updated_at       ms since epoch
//   display_name, language, tier
//   consent:<Channel number>     "<ConsentState number>:<updated ms>"
//   attr:<key>                   attribute value
//   act:<Channel number>         occurred_at ms of the latest event on that channel
// The identifiers hash maps "<type name>:<normalized value>" to linked_at ms.
// Thread-safe (pure).
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "libs/redis/reply.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {

inline constexpr absl::string_view kAttrPrefix = "attr:";
inline constexpr absl::string_view kConsentPrefix = "consent:";
inline constexpr absl::string_view kActivityPrefix = "act:";

// The identifiers-hash field of a normalized identifier.
std::string IdentifierField(const v1::Identifier& normalized);

// Builds a profile from HGETALL replies (flat arrays of field, value) of the profile and
// identifiers hashes. Unknown fields are ignored.
v1::Profile ProfileFromHashes(absl::string_view customer_id, const redis::Reply& profile_hash,
                              const redis::Reply& identifiers_hash);

}  // namespace onestory::identity
