// IdentityStore: identifiers -> customers, and customer profiles, in Redis.
//
//   IdentityStore store(&redis_client);
//   store.Resolve("acme", phone, /*create_if_missing=*/true, deadline,
//                 [](absl::StatusOr<IdentityStore::Resolved> r) { ... });
//
// Every operation validates its input first (INVALID_ARGUMENT naming the field; nothing sent to
// Redis), then runs as a few idempotent steps. Steps that touch one customer are one Lua script;
// steps that span a customer and an identifier index key (which live on different hash tags) are
// ordered so that a crash between them leaves a state the same call, retried, completes:
// - Resolve with create: the customer is written first, then the identifier is claimed with
//   SET NX. A customer whose claim lost a race is removed; one whose claim never happened (a
//   crash or timeout between the two steps) stays behind unreachable — a small leak, never a
//   wrong answer.
// - Link: the index is claimed first (SET NX GET), then the customer's identifier list updated.
// - Unlink: the index entry is removed first (only if it still names the customer), then the
//   customer's list entry.
// The index key is the truth of who owns an identifier.
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/field_mask.pb.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {

inline constexpr int kMaxIdentifiersPerCustomer = 1000;
inline constexpr int kMaxProfileAttributes = 128;
inline constexpr size_t kMaxDisplayNameBytes = 256;
inline constexpr size_t kMaxLanguageBytes = 35;
inline constexpr size_t kMaxTierBytes = 64;
inline constexpr size_t kMaxAttributeKeyBytes = 128;
inline constexpr size_t kMaxAttributeValueBytes = 4096;

class IdentityStore {
 public:
  struct Resolved {
    std::string customer_id;
    bool created = false;
    v1::Identifier identifier;  // normalized
  };
  struct Linked {
    v1::Identifier identifier;  // normalized
    bool already_linked = false;
  };

  explicit IdentityStore(redis::Client* client) : client_(client) {}

  // The owner of an identifier; with create_if_missing a new customer when there is none.
  // NOT_FOUND when nobody owns it and create_if_missing is false.
  void Resolve(const std::string& tenant, const v1::Identifier& identifier,
               bool create_if_missing, absl::Time deadline, Callback<Resolved> done);

  // The customer id a CustomerRef names. For a customer_id no Redis call is made (existence is
  // checked by the operation that follows); for an identifier, as Resolve. `field` names the
  // ref in errors ("customer").
  void ResolveRef(const std::string& tenant, absl::string_view field, const v1::CustomerRef& ref,
                  bool create_if_missing, absl::Time deadline, Callback<Resolved> done);

  void Link(const std::string& tenant, const std::string& customer_id,
            const v1::Identifier& identifier, absl::Time deadline, Callback<Linked> done);

  void Unlink(const std::string& tenant, const std::string& customer_id,
              const v1::Identifier& identifier, absl::Time deadline, Callback<bool> done);

  void GetProfile(const std::string& tenant, const std::string& customer_id, absl::Time deadline,
                  Callback<v1::Profile> done);

  // Applies the fields named by mask atomically; returns the profile afterwards.
  void UpdateProfile(const std::string& tenant, const std::string& customer_id,
                     const v1::Profile& values, const google::protobuf::FieldMask& mask,
                     absl::Time deadline, Callback<v1::Profile> done);

 private:
  void CreateAndClaim(const std::string& tenant, const v1::Identifier& id, absl::Time deadline,
                      Callback<Resolved> done);

  redis::Client* client_;
};

}  // namespace onestory::identity
