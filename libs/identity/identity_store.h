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
// - An index entry naming an erased customer (libs/privacy: left for a moment by an erase under
//   way) is as good as none for Resolve with create and for Link, which take it over; a Link
//   whose customer is erased between its claim and its record gives the claim back.
// The index key is the truth of who owns an identifier.
// Customers merged into another (libs/merge) are followed to their target by every operation
// that names a customer id (see merged.h); writes to a customer held by a running merge answer
// ABORTED.
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/field_mask.pb.h"
#include "libs/common/callback.h"
#include "libs/identity/phone_countries.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {

inline constexpr int kMaxIdentifiersPerCustomer = 1000;
inline constexpr int kMaxProfileAttributes = 128;
// Paths in one UpdateProfile's update_mask: more than every field twice over is a client bug,
// and each path costs a validation and a Redis op.
inline constexpr int kMaxUpdateMaskPaths = 64;
inline constexpr size_t kMaxDisplayNameBytes = 256;
inline constexpr size_t kMaxLanguageBytes = 35;
inline constexpr size_t kMaxTierBytes = 64;
inline constexpr size_t kMaxAttributeKeyBytes = 128;
inline constexpr size_t kMaxAttributeValueBytes = 4096;

inline constexpr int kMaxIdentifiersPerType = 500;

// The owner named by the FAILED_PRECONDITION a Link answers when another customer has the
// identifier; empty for any other status.
std::string OwnerOf(const absl::Status& link_conflict);

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
    std::string customer_id;  // who has it now: the request's customer, or its merge target
  };
  // How a Link knows the identifier is the customer's (all optional).
  struct LinkEvidence {
    v1::Channel channel = v1::CHANNEL_UNSPECIFIED;
    v1::Verification verification = v1::VERIFICATION_UNSPECIFIED;
    v1::Actor actor;  // SYSTEM when its type is unspecified
  };

  // `countries`: each tenant's default country for phone numbers in national format, applied
  // wherever this store normalizes an identifier (see NormalizeIdentifier). `redactor`: the
  // masking of the profile's free text before it is stored (privacy::OrCardsOnly: null masks
  // card numbers only); not owned, must outlive the store.
  explicit IdentityStore(redis::Client* client, DefaultCountries countries = {},
                         const privacy::Redactor* redactor = nullptr)
      : client_(client), countries_(std::move(countries)), redactor_(redactor) {}

  // The tenant's default country for phone numbers (nullptr: none). Whoever normalizes a
  // tenant's identifiers or profile phone attributes outside this store (match keys, the merge
  // deny check) passes it too, so every place reads a number alike.
  const PhoneCountry* DefaultCountryOf(absl::string_view tenant) const {
    return countries_.For(tenant);
  }

  // The owner of an identifier; with create_if_missing a new customer when there is none.
  // NOT_FOUND when nobody owns it and create_if_missing is false.
  void Resolve(const std::string& tenant, const v1::Identifier& identifier, bool create_if_missing,
               absl::Time deadline, Callback<Resolved> done);

  // The customer id a CustomerRef names. For a customer_id no Redis call is made (existence is
  // checked by the operation that follows); for an identifier, as Resolve. `field` names the
  // ref in errors ("customer").
  void ResolveRef(const std::string& tenant, absl::string_view field, const v1::CustomerRef& ref,
                  bool create_if_missing, absl::Time deadline, Callback<Resolved> done);

  // Attaches an identifier with its evidence; linking it again refreshes last_seen and raises
  // the verification. When another customer owns it: FAILED_PRECONDITION carrying that owner
  // (see OwnerOf). A customer merged into another is followed to its target.
  void Link(const std::string& tenant, const std::string& customer_id,
            const v1::Identifier& identifier, const LinkEvidence& evidence, absl::Time deadline,
            Callback<Linked> done);
  void Link(const std::string& tenant, const std::string& customer_id,
            const v1::Identifier& identifier, absl::Time deadline, Callback<Linked> done) {
    Link(tenant, customer_id, identifier, LinkEvidence{}, deadline, std::move(done));
  }

  // The customer a merge chain starting at customer_id ends at (customer_id itself when it was
  // never merged). NOT_FOUND for an unknown customer.
  void RootOf(const std::string& tenant, const std::string& customer_id, absl::Time deadline,
              Callback<std::string> done);

  void Unlink(const std::string& tenant, const std::string& customer_id,
              const v1::Identifier& identifier, absl::Time deadline, Callback<bool> done);

  void GetProfile(const std::string& tenant, const std::string& customer_id, absl::Time deadline,
                  Callback<v1::Profile> done);

  // Applies the fields named by mask atomically; returns the profile afterwards.
  void UpdateProfile(const std::string& tenant, const std::string& customer_id,
                     const v1::Profile& values, const google::protobuf::FieldMask& mask,
                     absl::Time deadline, Callback<v1::Profile> done);

 private:
  void LinkOn(const std::string& tenant, const std::string& customer_id, const v1::Identifier& id,
              const LinkEvidence& evidence, absl::Time deadline, Callback<Linked> done);
  void RecordLink(const std::string& tenant, const std::string& customer_id, v1::Identifier id,
                  const LinkEvidence& evidence, bool claimed_before, absl::Time deadline,
                  Callback<Linked> done);
  void UnlinkOn(const std::string& tenant, const std::string& customer_id, const v1::Identifier& id,
                absl::Time deadline, Callback<bool> done);
  // Creates a customer and claims the identifier for it: when nobody has it, or when
  // `erased_owner` (non-empty) still has it.
  void CreateAndClaim(const std::string& tenant, const v1::Identifier& id,
                      const std::string& erased_owner, absl::Time deadline,
                      Callback<Resolved> done);

  redis::Client* client_;
  const DefaultCountries countries_;
  const privacy::Redactor* const redactor_;
};

}  // namespace onestory::identity
