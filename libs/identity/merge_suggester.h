// MergeSuggester: other customers that are probably the same person as one customer, with the
// reasons (IdentityService.SuggestMerges). It only reads and suggests; nothing is merged.
//
//   MergeSuggester suggester(&redis_client, &identity_store, deny_list);
//   // After every change of a profile's attributes or display name (UpdateProfile, a merge):
//   suggester.IndexProfile("acme", "cus_1", updated_profile, deadline, [](auto r) { ... });
//   // An agent asks:
//   suggester.Suggest("acme", "cus_1", /*max=*/10, deadline,
//                     [](absl::StatusOr<v1::SuggestMergesResponse> r) { ... });
//
// Two customers match on a key of match_keys.h when one's attributes produce it and the other's
// attributes or linked identifiers produce it too (a chat visitor typed the email that another
// customer logged in with; two records carry one loyalty card number; one name at one postal
// code). Identifiers are already indexed by IdentityStore (the identifier key names the owner);
// attributes are indexed here, one Redis set per match key:
//
//   MatchSetKey("acme", "email:ann@example.com") -> "os:{acme:mk:email%3Aann@example.com}"
//     set: ids of the customers whose profile attributes produce that key
//
// Each set is its own hash tag, so the layout works on Redis Cluster. Sets only grow on
// IndexProfile; a member whose attributes changed since is found stale by Suggest, which
// re-reads every candidate's profile, and removed then (best effort). So a missed IndexProfile
// (a crash after UpdateProfile) costs a missed suggestion until the next update, never a wrong
// one. (The removal can race a concurrent update that gives the value back — X, then Y, then X
// again while a Suggest reads — and drop a fresh entry; the next update of that customer
// restores it.) Members merged into another customer or gone are skipped, not removed: an
// Unmerge brings them back.
//
// Values on the MergeDenyList are neither indexed nor looked up: never a reason.
//
// Bounded work per Suggest: at most kMaxKeysLookedUp keys of the customer are looked up
// (attributes first, then identifiers, strongest first), at most kMaxMembersPerKey members read
// from each set (SRANDMEMBER: a larger set names a value so common it is a weak reason), and at
// most kMaxCandidatesExamined candidates loaded (those with the most provisional weight first).
// A suggestion can therefore be missed for a customer with very many identifiers or a very
// common value; it is never wrong.
//
// Thread-safe. Callbacks run on the Redis loop thread, or on the caller's thread when the
// request is rejected before reaching Redis (see libs/common/callback.h).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/identity/identity_store.h"
#include "libs/identity/match_keys.h"
#include "libs/redis/client.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::identity {

inline constexpr int kDefaultMaxSuggestions = 10;  // max_suggestions 0
inline constexpr int kMaxSuggestions = 50;
inline constexpr int kMaxKeysLookedUp = 100;
inline constexpr int kMaxMembersPerKey = 200;
inline constexpr int kMaxCandidatesExamined = 200;

// The Redis set of customers whose attributes produce `match_key` (MatchKey::key). The tenant
// must be validated; the key is percent-encoded, so it cannot leave its hash tag.
std::string MatchSetKey(absl::string_view tenant, absl::string_view match_key);

class MergeSuggester {
 public:
  // `client` and `store` must outlive the suggester, and the suggester its calls in flight.
  MergeSuggester(redis::Client* client, IdentityStore* store, MergeDenyList deny_list)
      : client_(client), store_(store), deny_list_(std::move(deny_list)) {}

  // Adds the customer to the set of every key its attributes produce (ProfileMatchKeys, minus
  // denied ones). `profile` is the profile as stored (UpdateProfile's answer). Idempotent;
  // answers true. Errors: INVALID_ARGUMENT (tenant, customer_id), UNAVAILABLE,
  // DEADLINE_EXCEEDED (some sets may have been updated: retry).
  void IndexProfile(const std::string& tenant, const std::string& customer_id,
                    const v1::Profile& profile, absl::Time deadline, Callback<bool> done);

  // Up to `max` suggestions (0 means kDefaultMaxSuggestions), highest score first, then by
  // customer id. Each carries its reasons (one per shared value, strongest first), the score
  // (sum of their weights) and the candidate's profile. The customer itself, customers merged
  // into another (profile field "merged_into") and customers that no longer exist are never
  // suggested. Errors: INVALID_ARGUMENT (tenant, customer_id, max outside 0-50), NOT_FOUND (the
  // customer), UNAVAILABLE, DEADLINE_EXCEEDED.
  void Suggest(const std::string& tenant, const std::string& customer_id, int max,
               absl::Time deadline, Callback<v1::SuggestMergesResponse> done);

 private:
  struct SuggestCall;
  void LookUp(std::shared_ptr<SuggestCall> call, v1::Profile profile);
  void Examine(std::shared_ptr<SuggestCall> call);
  void Finish(std::shared_ptr<SuggestCall> call);

  redis::Client* client_;
  IdentityStore* store_;
  const MergeDenyList deny_list_;
};

}  // namespace onestory::identity
