// What every durable step machine (merge and unmerge in libs/merge, erase and redaction in
// libs/privacy) shares: the failpoint asked before each step, and the recovery pass that resumes
// the runs a crash left in a pending set or hash.
//
// Each machine keeps its own record, its own pending key and its own Redis functions; these
// helpers only do what was the same in all of them.
//
//   // Before each step:
//   if (absl::Status st = steps::CheckFailpoint(failpoint_, "erase.keys"); !st.ok()) {
//     return run->done(st);
//   }
//
//   // Recovery of the runs listed in a "<tenant>/<customer>" -> "<updated ms>..." hash:
//   steps::RecoverPendingHash(
//       client_, keys::PendingRedactionsKey(), "redact", older_than, ParseMillis, deadline,
//       [](const steps::PendingRun& run, steps::Report report) { /* resume it */ },
//       std::move(done));
//
// Thread-safe: the helpers keep no state between calls; callbacks run on the Redis event-loop
// thread (or the caller's, before any Redis call) and must not block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/barrier.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"

namespace onestory::steps {

// Asked with a step's name ("merge.swap", "erase.keys", "redact.copy") before the step runs;
// true stops the run there, as a crash between two steps would. Tests set one; servers pass
// none (nullptr: never stops).
using Failpoint = std::function<bool(const std::string& step)>;

// OK, or UNAVAILABLE "failpoint <step>" when `failpoint` stops the run before `step` (the run
// then ends with that status, and a retry or the recovery pass goes on from its record).
absl::Status CheckFailpoint(const Failpoint& failpoint, absl::string_view step);

// How one resumed run ended: true when it finished, false when it was left (too young, given up,
// or failed in a way that leaves it to the next pass), or an error that fails the whole pass.
using Report = absl::AnyInvocable<void(absl::StatusOr<bool>)>;

// Resumes every one of `runs` at once with `resume(run, report)`, which calls `report` exactly
// once. When all have reported, calls `done` with how many finished, or with the first error
// reported. With no runs, calls done(0) at once.
template <typename Run>
void ResumeAll(const std::vector<Run>& runs, absl::AnyInvocable<void(const Run&, Report)> resume,
               Callback<int> done) {
  auto finished = std::make_shared<std::atomic<int>>(0);
  auto shared_done = std::make_shared<Callback<int>>(std::move(done));
  auto b = Barrier::Make(runs.size(), [finished, shared_done](absl::Status st) {
    if (!st.ok()) return (*shared_done)(st);
    (*shared_done)(finished->load());
  });
  for (const Run& run : runs) {
    resume(run, [b, finished](absl::StatusOr<bool> r) {
      if (r.ok() && *r) ++*finished;
      b->Arrive(r.status());
    });
  }
}

// One entry of a pending hash keyed "<tenant>/<customer>".
struct PendingRun {
  std::string tenant;
  std::string customer;
  std::string value;  // the entry's value as stored (the machine's own format)
};

// Reads the pending hash `key` (fields "<tenant>/<customer>"), takes the entries whose
// `updated_ms(value)` is at least `older_than` ago (younger ones are probably still running
// somewhere) and whose field is a valid tenant and customer id, logs "<name>.recovering" for
// each, and resumes them with ResumeAll. `done` gets how many finished, or the HGETALL's error.
void RecoverPendingHash(redis::Client* client, const std::string& key, const std::string& name,
                        absl::Duration older_than,
                        absl::AnyInvocable<int64_t(absl::string_view value)> updated_ms,
                        absl::Time deadline,
                        absl::AnyInvocable<void(const PendingRun&, Report)> resume,
                        Callback<int> done);

}  // namespace onestory::steps
