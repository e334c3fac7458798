// MergeEngine: merging two customers into one, and undoing it, as crash-safe idempotent steps.
//
//   MergeEngine engine(&redis_client);
//   engine.Merge({"acme", "cus_src", "cus_tgt", "same person: verified by phone", actor, {}},
//                deadline, [](absl::StatusOr<MergeEngine::Result> r) { ... });
//   engine.Unmerge("acme", r->record.merge_id(), "wrong person", actor, deadline, done);
//   engine.RecoverPending(deadline, done);  // at start-up and every few seconds
//
// A merge touches two customers on two hash tags (two Redis Cluster shards) plus the identifier
// index keys, so it cannot be one atomic script. It is a durable record (os:{<tenant>:m:<id>},
// listed in os:{merges}:pending until finished) and these steps, each one atomic Redis function
// (libs/merge/lua/, see libs/merge/README.md) or an idempotent command on one hash slot, each
// safe to run again:
//   lock        both customers get merge_lock = <merge id> (lowest id first); from here their
//               writes answer ABORTED. Limits are checked; a refusal releases both locks.
//   stage       the target's timeline and the source's events are read, interleaved by
//               occurred_at (the target's events keep their stream ids, so cursors and page
//               tokens held by its readers stay valid) and written to a staging stream on the
//               target's hash tag. Source events whose event_id the target holds are skipped.
//               The plan is a pure function of the two frozen timelines, so a rerun continues
//               the staging stream where it stopped. Then both outboxes are drained and the
//               source's engagement state (conversation records, cases, facts, contacts,
//               contact channels, sentiment counts, and the due times the due-promise index
//               holds for its cases) is copied into a staging hash on the target's hash tag.
//   swap        one function on the target: the staging stream becomes the timeline; dedup,
//               activity, open conversations, profile fields and the staged engagement state
//               are merged, the target's overwritten profile values are kept for an Unmerge,
//               and the stream head is recorded; a moved open case's journey entry and due
//               promise go to the target's outbox, which is then settled (libs/outbox). Guarded
//               by a per-merge marker, so a second run does nothing.
//   identifiers each identifier index entry that names the source is moved to the target
//               (compare-and-set), then added to the target's identifiers with its evidence
//               and the merge id.
//   mark        the source gets merged_into, merge_id, merged_head and loses its lock: from
//               here every operation on it is redirected to the target (see identity/merged.h),
//               and its watchers are woken to follow.
//   finish      the target's lock is released, the record says MERGED, both histories list it.
// The source's own keys are kept as they were: they are what an Unmerge gives back.
//
// Unmerge runs the same way: lock, return (events tagged with the merge — the source's and
// those appended later through its id or identifiers — that the source lacks are appended to
// it; the records the merge brought, as they are now, are copied into the source's slot and
// applied there, their cases' journey entries and promises through the source's outbox), remove
// (functions on the target delete the tagged events and the merge's records, restore its
// profile values and recompute activity and conversations), identifiers (moved back by
// compare-and-set), release (the source's merge fields and lock go), finish.
//
// Whoever runs a step — the original call, a retry of it, or RecoverPending in any server —
// gets the same result; a crash at any point leaves a record that the next run finishes.
//
// Thread-safe. Callbacks run on the Redis loop thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "libs/steps/steps.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::merge {

// The most events a merge moves (source and target together); larger merges answer
// RESOURCE_EXHAUSTED before anything changes.
inline constexpr int64_t kMaxMergeEvents = 100000;
// Merge records older than this with steps left are finished by RecoverPending.
inline constexpr absl::Duration kRecoveryAfter = absl::Seconds(10);

struct MergeInput {
  std::string tenant;
  std::string source_customer_id;
  std::string target_customer_id;
  std::string reason;
  v1::Actor actor;
  std::vector<std::string> take_from_source;  // profile paths
  bool automatic = false;
};

class MergeEngine {
 public:
  struct Result {
    v1::MergeRecord record;
    bool already_merged = false;
  };

  // A test hook: called with each step's name ("merge.stage", "unmerge.return", ...) before the
  // step runs; returning true stops the run there as a crash would (the call answers
  // UNAVAILABLE and nothing is cleaned up). See libs/steps/steps.h.
  using Failpoint = steps::Failpoint;

  // `redactor`: the masking of the reasons before they are stored (privacy::OrCardsOnly: null
  // masks card numbers only). Not owned; must outlive the engine.
  explicit MergeEngine(redis::Client* client, Failpoint failpoint = nullptr,
                       const privacy::Redactor* redactor = nullptr)
      : client_(client), failpoint_(std::move(failpoint)), redactor_(redactor) {}

  // Validates (INVALID_ARGUMENT naming the field), then merges or finishes the merge of the
  // same source into the same target that is under way. The reason is stored (and answered)
  // masked (by the engine's redactor). See the proto for the errors.
  void Merge(const MergeInput& input, absl::Time deadline, Callback<Result> done);

  // Undoes a MERGED merge, or finishes an unmerge under way. The reason is masked as Merge's.
  void Unmerge(const std::string& tenant, const std::string& merge_id, const std::string& reason,
               const v1::Actor& actor, absl::Time deadline, Callback<v1::MergeRecord> done);

  // The customer's merges and unmerges, newest first (at most 1,000).
  void History(const std::string& tenant, const std::string& customer_id, absl::Time deadline,
               Callback<std::vector<v1::MergeRecord>> done);

  // Finishes every merge or unmerge whose record has not changed for kRecoveryAfter (all of
  // them with `all`, as at start-up when no other server runs). Returns how many it finished.
  void RecoverPending(bool all, absl::Time deadline, Callback<int> done);

  // The redactor given at construction (null: cards only), for whoever records a reason of the
  // same call elsewhere (the audit log).
  const privacy::Redactor* redactor() const { return redactor_; }

 private:
  struct Run;
  void Drive(std::shared_ptr<Run> run);
  void Step(std::shared_ptr<Run> run, int next);
  void Fail(std::shared_ptr<Run> run, absl::Status status);
  // Takes both customers' locks (lowest id first); `locked` runs when both are held,
  // `refused` when one is refused (a transient failure fails the run for a later retry).
  void LockBoth(std::shared_ptr<Run> run, const std::string& source_role,
                const std::string& target_role, absl::AnyInvocable<void()> locked,
                absl::AnyInvocable<void(absl::Status)> refused);
  void ReleaseLocks(std::shared_ptr<Run> run, absl::AnyInvocable<void()> then);
  void Lock(std::shared_ptr<Run> run);
  void Stage(std::shared_ptr<Run> run);
  void WriteStaging(std::shared_ptr<Run> run, size_t from);
  void StageRemap(std::shared_ptr<Run> run);
  // The end of the stage step: both outboxes drained, the source's engagement state staged in
  // the target's slot.
  void StageSourceEngagement(std::shared_ptr<Run> run);
  void Swap(std::shared_ptr<Run> run);  // the swap step: SwapStaged unless swapped before
  void SwapStaged(std::shared_ptr<Run> run, int64_t staged);
  void SettleTarget(std::shared_ptr<Run> run);  // the target's outbox settled, then identifiers
  void MoveIdentifiers(std::shared_ptr<Run> run);
  void Mark(std::shared_ptr<Run> run);
  void Finish(std::shared_ptr<Run> run);
  void UnLock(std::shared_ptr<Run> run);
  void Return(std::shared_ptr<Run> run);
  // The end of the return step: the records this merge brought go back to the source
  // (staged in its slot, merge_restore), its outbox settled.
  void ReturnEngagement(std::shared_ptr<Run> run);
  void Remove(std::shared_ptr<Run> run);        // the source's contacts and counts staged, then
  void RemoveStaged(std::shared_ptr<Run> run);  // the target's side removed
  void ReturnIdentifiers(std::shared_ptr<Run> run);
  void Release(std::shared_ptr<Run> run);
  void UnFinish(std::shared_ptr<Run> run);
  // Loads a record and drives it from its step; with `pair`, only when it merges that
  // (source, target), else ABORTED.
  void Resume(const std::string& tenant, const std::string& merge_id, absl::Time deadline,
              Callback<v1::MergeRecord> done,
              std::optional<std::pair<std::string, std::string>> pair = std::nullopt);
  void StartMerge(const MergeInput& input, absl::Time deadline, Callback<Result> done);

  redis::Client* client_;
  Failpoint failpoint_;
  const privacy::Redactor* redactor_;
};

}  // namespace onestory::merge
