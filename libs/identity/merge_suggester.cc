#include "libs/identity/merge_suggester.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"

namespace onestory::identity {
namespace {

using redis::Reply;

// The profile hash field a merge sets on its source (see IdentityStore's merge).
constexpr absl::string_view kMergedIntoField = "merged_into";

// Statuses that fail the whole call; any other status of one candidate only skips it.
bool IsTransient(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable ||
         st.code() == absl::StatusCode::kDeadlineExceeded;
}

// One key of the customer asking, and where it comes from.
struct OwnKey {
  MatchKey key;
  bool attribute = false;   // its attributes produce it
  bool identifier = false;  // it owns the identifier
};

bool StrongerFirst(const MatchKey& a, const MatchKey& b) {
  if (a.weight != b.weight) return a.weight > b.weight;
  return a.key < b.key;
}

// The customer's keys, attributes first, then identifiers strongest first; denied keys left
// out; at most kMaxKeysLookedUp.
std::vector<OwnKey> OwnKeys(const v1::Profile& p, const MergeDenyList& deny,
                            const PhoneCountry* country) {
  std::vector<OwnKey> out;
  absl::flat_hash_map<std::string, size_t> index;
  auto add = [&](MatchKey k, bool attribute) {
    if (deny.DeniedKey(k.key)) return;
    auto [it, inserted] = index.try_emplace(k.key, out.size());
    if (inserted) out.push_back(OwnKey{std::move(k)});
    (attribute ? out[it->second].attribute : out[it->second].identifier) = true;
  };
  for (MatchKey& k : ProfileMatchKeys(p, country)) add(std::move(k), /*attribute=*/true);
  std::vector<MatchKey> ids = IdentifierMatchKeys(p);
  std::sort(ids.begin(), ids.end(), StrongerFirst);
  for (MatchKey& k : ids) add(std::move(k), /*attribute=*/false);
  if (out.size() > static_cast<size_t>(kMaxKeysLookedUp)) out.resize(kMaxKeysLookedUp);
  return out;
}

absl::flat_hash_set<std::string> KeySet(const std::vector<MatchKey>& keys) {
  absl::flat_hash_set<std::string> out;
  for (const MatchKey& k : keys) out.insert(k.key);
  return out;
}

}  // namespace

std::string MatchSetKey(absl::string_view tenant, absl::string_view match_key) {
  return absl::StrCat("os:{", tenant, ":mk:", keys::EncodeKeyPart(match_key), "}");
}

void MergeSuggester::IndexProfile(const std::string& tenant, const std::string& customer_id,
                                  const v1::Profile& profile, absl::Time deadline,
                                  Callback<bool> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  std::vector<std::string> set_keys;
  for (const MatchKey& k : ProfileMatchKeys(profile, store_->DefaultCountryOf(tenant))) {
    if (!deny_list_.DeniedKey(k.key)) set_keys.push_back(MatchSetKey(tenant, k.key));
  }
  if (set_keys.empty()) return done(true);

  struct Join {
    Join(size_t n, Callback<bool> d) : pending(n), done(std::move(d)) {}
    absl::Mutex mu;
    size_t pending ABSL_GUARDED_BY(mu);
    absl::Status status ABSL_GUARDED_BY(mu);
    Callback<bool> done;  // called once, by the last reply
  };
  auto join = std::make_shared<Join>(set_keys.size(), std::move(done));
  for (std::string& key : set_keys) {
    client_->Command({"SADD", std::move(key), customer_id}, deadline,
                     [join](absl::StatusOr<Reply> r) {
                       absl::Status st;
                       {
                         absl::MutexLock lock(&join->mu);
                         if (!r.ok() && join->status.ok()) join->status = r.status();
                         if (--join->pending > 0) return;
                         st = join->status;
                       }
                       if (st.ok()) {
                         join->done(true);
                       } else {
                         join->done(st);
                       }
                     });
  }
}

// The state of one Suggest call, shared by the callbacks of its fan-outs. Each fan-out sets
// `pending` to its number of commands; the callback that brings it to zero moves on.
struct MergeSuggester::SuggestCall {
  struct Candidate {
    std::string customer_id;
    std::vector<size_t> set_hits;  // indexes into own of the keys whose set named it
    absl::StatusOr<v1::Profile> profile = absl::UnknownError("not loaded");
    std::string merged_into;
  };

  std::string tenant;
  std::string customer_id;
  int max = kDefaultMaxSuggestions;
  absl::Time deadline;
  Callback<v1::SuggestMergesResponse> done;
  std::vector<OwnKey> own;  // set before the first fan-out, then read only
  std::string root_id;      // the customer the profile read answered for (its merge target)

  bool IsSelf(absl::string_view id) const { return id == customer_id || id == root_id; }

  absl::Mutex mu;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  absl::Status error ABSL_GUARDED_BY(mu);  // the first transient error
  // Phase 1 (look up): candidate id -> its set hits, and the own keys naming it.
  absl::flat_hash_map<std::string, std::vector<size_t>> set_hits ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, absl::flat_hash_set<size_t>> hits ABSL_GUARDED_BY(mu);
  // Phase 2 (examine): at most kMaxCandidatesExamined.
  std::vector<Candidate> candidates ABSL_GUARDED_BY(mu);

  // Records a failed reply; true when this was the last reply of the fan-out.
  bool Arrived(const absl::Status& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!st.ok() && error.ok()) error = st;
    return --pending == 0;
  }
  // Answers the error of the fan-out that just ended, if any; true when it did.
  bool FailIfError() ABSL_LOCKS_EXCLUDED(mu) {
    absl::Status st;
    {
      absl::MutexLock lock(&mu);
      st = error;
    }
    if (st.ok()) return false;
    done(st);
    return true;
  }
};

void MergeSuggester::Suggest(const std::string& tenant, const std::string& customer_id, int max,
                             absl::Time deadline, Callback<v1::SuggestMergesResponse> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  if (max < 0 || max > kMaxSuggestions) {
    return done(
        absl::InvalidArgumentError(absl::StrCat("max_suggestions: must be 0-", kMaxSuggestions,
                                                " (0 means ", kDefaultMaxSuggestions, ")")));
  }
  auto call = std::make_shared<SuggestCall>();
  call->tenant = tenant;
  call->customer_id = customer_id;
  call->max = max == 0 ? kDefaultMaxSuggestions : max;
  call->deadline = deadline;
  call->done = std::move(done);
  store_->GetProfile(tenant, customer_id, deadline, [this, call](absl::StatusOr<v1::Profile> p) {
    if (!p.ok()) return call->done(p.status());
    LookUp(call, *std::move(p));
  });
}

// Phase 1: who shares a key with the customer. Per key, the set of customers whose attributes
// produce it; per identifier-typed attribute key, the identifier's owner.
void MergeSuggester::LookUp(std::shared_ptr<SuggestCall> call, v1::Profile profile) {
  call->own = OwnKeys(profile, deny_list_, store_->DefaultCountryOf(call->tenant));
  call->root_id = profile.customer_id();
  struct Lookup {
    std::vector<std::string> argv;
    size_t own_index;
    bool is_set;
  };
  std::vector<Lookup> lookups;
  for (size_t i = 0; i < call->own.size(); ++i) {
    const OwnKey& k = call->own[i];
    lookups.push_back(
        {{"SRANDMEMBER", MatchSetKey(call->tenant, k.key.key), absl::StrCat(kMaxMembersPerKey)},
         i,
         true});
    // The owner of an identifier the customer owns is the customer: no need to ask.
    if (k.attribute && !k.identifier && k.key.type != v1::IDENTIFIER_TYPE_UNSPECIFIED) {
      lookups.push_back(
          {{"GET", keys::IdentifierKey(call->tenant, k.key.type, k.key.detail)}, i, false});
    }
  }
  if (lookups.empty()) return call->done(v1::SuggestMergesResponse());
  {
    absl::MutexLock lock(&call->mu);
    call->pending = lookups.size();
  }
  for (Lookup& l : lookups) {
    client_->Command(
        std::move(l.argv), call->deadline,
        [this, call, own_index = l.own_index, is_set = l.is_set](absl::StatusOr<Reply> r) {
          std::vector<std::string> named;
          if (r.ok() && r->is_array()) {
            for (const Reply& e : r->elements) named.push_back(e.str);
          } else if (r.ok() && r->is_string()) {
            named.push_back(r->str);
          }
          {
            absl::MutexLock lock(&call->mu);
            for (std::string& id : named) {
              if (call->IsSelf(id) || !ValidateCustomerId("candidate", id).ok()) continue;
              if (is_set) call->set_hits[id].push_back(own_index);
              call->hits[id].insert(own_index);
            }
            if (!call->Arrived(r.status())) return;
          }
          if (!call->FailIfError()) Examine(call);
        });
  }
}

// Phase 2: load the strongest candidates' profiles and whether they were merged away.
void MergeSuggester::Examine(std::shared_ptr<SuggestCall> call) {
  size_t n = 0;
  {
    absl::MutexLock lock(&call->mu);
    std::vector<std::pair<float, std::string>> ranked;
    for (const auto& [id, own_indexes] : call->hits) {
      float provisional = 0;
      for (size_t i : own_indexes) provisional += call->own[i].key.weight;
      ranked.emplace_back(provisional, id);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first > b.first;
      return a.second < b.second;
    });
    if (ranked.size() > static_cast<size_t>(kMaxCandidatesExamined)) {
      ranked.resize(kMaxCandidatesExamined);
    }
    for (auto& [weight, id] : ranked) {
      SuggestCall::Candidate c;
      c.customer_id = std::move(id);
      if (auto it = call->set_hits.find(c.customer_id); it != call->set_hits.end()) {
        c.set_hits = std::move(it->second);
      }
      call->candidates.push_back(std::move(c));
    }
    call->hits.clear();
    call->set_hits.clear();
    n = call->candidates.size();
    call->pending = 2 * n;
  }
  if (n == 0) return Finish(call);

  auto arrived = [this, call](const absl::Status& st) {
    {
      absl::MutexLock lock(&call->mu);
      if (!call->Arrived(IsTransient(st) ? st : absl::OkStatus())) return;
    }
    if (!call->FailIfError()) Finish(call);
  };
  for (size_t i = 0; i < n; ++i) {
    std::string id;
    {
      absl::MutexLock lock(&call->mu);
      id = call->candidates[i].customer_id;
    }
    store_->GetProfile(call->tenant, id, call->deadline,
                       [call, i, arrived](absl::StatusOr<v1::Profile> p) mutable {
                         absl::Status st = p.status();
                         {
                           absl::MutexLock lock(&call->mu);
                           call->candidates[i].profile = std::move(p);
                         }
                         arrived(st);
                       });
    client_->Command(
        {"HGET", keys::CustomerKeys(call->tenant, id).profile(), std::string(kMergedIntoField)},
        call->deadline, [call, i, arrived](absl::StatusOr<Reply> r) mutable {
          absl::Status st = r.status();
          {
            absl::MutexLock lock(&call->mu);
            // A failed read counts as merged: the candidate is skipped.
            call->candidates[i].merged_into = !r.ok() ? "?" : (r->is_string() ? r->str : "");
          }
          arrived(st);
        });
  }
}

// Re-checks every loaded candidate against its profile as it is now, scores and answers.
void MergeSuggester::Finish(std::shared_ptr<SuggestCall> call) {
  std::vector<SuggestCall::Candidate> candidates;
  {
    absl::MutexLock lock(&call->mu);
    candidates = std::move(call->candidates);
  }
  std::vector<v1::MergeSuggestion> suggestions;
  for (SuggestCall::Candidate& c : candidates) {
    // NOT_FOUND (gone), merged away (GetProfile follows merges: another id answers), or any
    // other refusal: not a customer to suggest.
    if (!c.profile.ok() || !c.merged_into.empty() || c.profile->customer_id() != c.customer_id ||
        call->IsSelf(c.customer_id)) {
      continue;
    }
    absl::flat_hash_set<std::string> attribute_keys =
        KeySet(ProfileMatchKeys(*c.profile, store_->DefaultCountryOf(call->tenant)));
    absl::flat_hash_set<std::string> identifier_keys = KeySet(IdentifierMatchKeys(*c.profile));
    // A set member whose attributes no longer produce the key: remove it, best effort.
    for (size_t i : c.set_hits) {
      const std::string& key = call->own[i].key.key;
      if (attribute_keys.contains(key)) continue;
      client_->Command({"SREM", MatchSetKey(call->tenant, key), c.customer_id}, call->deadline,
                       [](absl::StatusOr<Reply>) {});
    }
    std::vector<const MatchKey*> matched;
    absl::flat_hash_set<std::string> seen;  // code + detail
    for (const OwnKey& k : call->own) {
      // At least one side must be an attribute: one identifier has one owner.
      bool shared = (k.attribute &&
                     (attribute_keys.contains(k.key.key) || identifier_keys.contains(k.key.key))) ||
                    (k.identifier && attribute_keys.contains(k.key.key));
      if (shared && seen.insert(absl::StrCat(k.key.code, "\n", k.key.detail)).second) {
        matched.push_back(&k.key);
      }
    }
    if (matched.empty()) continue;
    std::sort(matched.begin(), matched.end(),
              [](const MatchKey* a, const MatchKey* b) { return StrongerFirst(*a, *b); });
    v1::MergeSuggestion s;
    s.set_customer_id(c.customer_id);
    float score = 0;
    for (const MatchKey* k : matched) {
      v1::MatchReason* r = s.add_reasons();
      r->set_code(k->code);
      r->set_detail(k->detail);
      r->set_weight(k->weight);
      score += k->weight;
    }
    s.set_score(score);
    *s.mutable_profile() = *std::move(c.profile);
    suggestions.push_back(std::move(s));
  }
  std::sort(suggestions.begin(), suggestions.end(), [](const auto& a, const auto& b) {
    if (a.score() != b.score()) return a.score() > b.score();
    return a.customer_id() < b.customer_id();
  });
  if (suggestions.size() > static_cast<size_t>(call->max)) suggestions.resize(call->max);
  v1::SuggestMergesResponse response;
  for (v1::MergeSuggestion& s : suggestions) *response.add_suggestions() = std::move(s);
  call->done(std::move(response));
}

}  // namespace onestory::identity
