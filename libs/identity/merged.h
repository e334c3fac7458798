// Merged customers: how every per-customer operation follows a merge to its target.
//
// A customer merged into another keeps its keys (the merge's record of what to give back on an
// Unmerge) with three extra profile fields: merged_into, merge_id, merged_head. Every
// per-customer function starts with os_guard (libs/identity/lua/guard.lua): a merged customer answers OS_MOVED (carrying the
// target), and a customer held by a running merge or unmerge refuses writes with OS_BUSY
// (ABORTED: retry). FollowMerges turns OS_MOVED into a second attempt on the target:
//
//   FollowMerges<v1::Profile>(customer_id,
//       [&](const std::string& id, Callback<v1::Profile> cb) { store.GetProfile(.., id, .., cb); },
//       done);
//
// Thread-safe (pure functions).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/common/callback.h"

namespace onestory::identity {

// Merges are at most this deep (A into B, B into C, ...); deeper chains answer INTERNAL.
inline constexpr int kMaxMergeHops = 16;

// os_guard (libs/identity/lua/guard.lua, a helper of the Redis Function library, libs/lua):
//   os_guard(profile_key, customer_id, write) -> nil, or the error reply to return:
// OS_NOT_FOUND for an unknown customer ("... was erased" for an erased one: its profile is a
// tombstone holding only erased_at, see libs/privacy), OS_MOVED for a merged one, and, when
// `write`, OS_BUSY for one held by a merge.

struct Moved {
  std::string target;    // the customer it was merged into
  std::string merge_id;  // the merge that did it
  std::string head;      // the target's stream head when the merge finished
};

// The redirect an OS_MOVED error carries, or nullopt for any other status.
std::optional<Moved> MovedTo(const absl::Status& status);

// Runs attempt(customer_id, cb); while the answer is "merged into X", runs it again for X.
// `moved`, when given, is called with each redirect before the next attempt.
template <typename T>
void FollowMerges(std::string customer_id,
                  absl::AnyInvocable<void(const std::string&, Callback<T>)> attempt,
                  Callback<T> done, absl::AnyInvocable<void(const Moved&)> moved = nullptr) {
  struct State {
    absl::AnyInvocable<void(const std::string&, Callback<T>)> attempt;
    Callback<T> done;
    absl::AnyInvocable<void(const Moved&)> moved;
    int hops = 0;
  };
  auto state =
      std::make_shared<State>(State{std::move(attempt), std::move(done), std::move(moved), 0});
  struct Step {
    static void Run(std::shared_ptr<State> s, const std::string& id) {
      s->attempt(id, [s](absl::StatusOr<T> r) {
        std::optional<Moved> m = r.ok() ? std::nullopt : MovedTo(r.status());
        if (!m) return s->done(std::move(r));
        if (++s->hops > kMaxMergeHops) {
          return s->done(absl::InternalError("merge chain longer than 16 customers"));
        }
        if (s->moved) s->moved(*m);
        Run(s, m->target);
      });
    }
  };
  Step::Run(std::move(state), customer_id);
}

}  // namespace onestory::identity
