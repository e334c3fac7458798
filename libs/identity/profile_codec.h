// Profile <-> Redis hash fields.
//
// The profile hash (keys::CustomerKeys::profile()) holds:
//   created_at, updated_at       ms since epoch
//   display_name, language, tier
//   consent:<Channel number>     "<ConsentState number>:<updated ms>"
//   attr:<key>                   attribute value
//   act:<Channel number>         occurred_at ms of the latest event on that channel
//   merged_into, merge_id,       set on a customer merged into another (see libs/merge):
//   merged_head                  the target, the merge, the target's stream head at the merge
//   merge_lock                   the merge or unmerge holding the customer (writes refused)
// The identifiers hash maps "<type name>:<normalized value>" to its evidence:
//   "v2|<first ms>|<last ms>|<verification>|<channel>|<actor type>|<merge id>|<merged from>|
//    <actor id>"
// (the actor id last: it may hold '|'), or, as written before evidence existed, linked_at ms.
// Thread-safe (pure).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/redis/reply.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {

inline constexpr absl::string_view kAttrPrefix = "attr:";
inline constexpr absl::string_view kConsentPrefix = "consent:";
inline constexpr absl::string_view kActivityPrefix = "act:";

// The identifiers-hash field of a normalized identifier.
std::string IdentifierField(const v1::Identifier& normalized);

// The identifiers-hash value for `evidence` (first_seen, last_seen, verification, channel,
// linked_by, merge_id, merged_from are stored).
std::string EncodeEvidence(const v1::LinkEvidence& evidence);
// The evidence in an identifiers-hash value; false when it is not one. Its merge_id is the
// stored chain: every merge that carried the identifier, innermost first ("m1,m2").
bool DecodeEvidence(absl::string_view value, v1::LinkEvidence* evidence);

// The linked identifier an identifiers-hash entry describes, as the API shows it (merge_id: the
// latest merge only); false for a malformed field.
bool LinkedIdentifierFromEntry(absl::string_view field, absl::string_view value,
                               v1::LinkedIdentifier* out);

// Builds a profile from HGETALL replies (flat arrays of field, value) of the profile and
// identifiers hashes. Unknown fields are ignored.
v1::Profile ProfileFromHashes(absl::string_view customer_id, const redis::Reply& profile_hash,
                              const redis::Reply& identifiers_hash);

// os_guard (merged.h) for a read made outside a function, from the profile hash's HGETALL
// read in the same transaction: OK, or the status os_guard's reply maps to (NOT_FOUND for an
// unknown or erased customer; FAILED_PRECONDITION "moved:..." for a merged one, which
// FollowMerges follows). A customer held by a merge is read as usual.
absl::Status GuardRead(absl::string_view customer_id, const redis::Reply& profile_hash);

}  // namespace onestory::identity
