// The state of one merge or unmerge being driven through its steps (MergeEngine::Run), the
// steps' ids, and what the steps of both share: the function calls both make (merge_move_index,
// merge_release_notify) and the staging of engagement state into the slot of the customer that
// applies it (ReadEngagement, StageEngagement). Parallel Redis calls
// are joined with libs/common/barrier.h. The stored record's codec is merge_record.h. Internal to
// libs/merge.
//
// The step machine: a record's `step` names the next step to run; MergeEngine::Step saves the
// record with it (merge_save_step) and MergeEngine::Drive runs it: merge_engine.cc drives,
// merge_steps.cc and unmerge_steps.cc hold the steps, recovery.cc resumes what a crash left.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/common/barrier.h"
#include "libs/common/callback.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/merge_move_index.h"
#include "libs/lua/merge_release_notify.h"
#include "libs/merge/merge_engine.h"
#include "libs/merge/timeline_entries.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::merge {

// Steps. A record's `step` field names the next one to run.
enum StepId {
  kLock = 1,
  kStage = 2,  // the timeline, its remap and the source's engagement state, staged
  kSwap = 3,   // merge_swap on the target, then the target's outbox settled
  kIdentifiers = 4,
  kMark = 5,
  kFinish = 6,
  kULock = 11,
  kUReturn = 12,
  kURemove = 13,
  kUIdentifiers = 14,
  kURelease = 15,
  kUFinish = 16,
  kDone = 99,
};

// "merge.lock", "unmerge.return", ... (the failpoints' and the logs' names), "done" else.
const char* StepName(int step);

inline constexpr size_t kWriteChunkEntries = 128;  // keeps each function call near 2 ms
inline constexpr size_t kWriteChunkBytes = 4 << 20;

// INVALID_ARGUMENT naming the field, for Merge's and Unmerge's actor and reason.
absl::Status ValidateActor(const v1::Actor& actor);
absl::Status ValidateReason(absl::string_view reason);

// One merge or unmerge being driven through its steps.
struct MergeEngine::Run {
  std::string tenant;
  v1::MergeRecord record;
  int step = kLock;
  absl::Time deadline;
  Callback<v1::MergeRecord> done;
  // Working state of the current step.
  std::vector<Entry> target_entries;
  std::vector<Entry> source_entries;
  std::vector<Entry*> plan;     // the merged timeline, in order
  std::string original_record;  // an unmerge's record as it was, restored when refused

  const std::string& id() const { return record.merge_id(); }
  const std::string& source() const { return record.source_customer_id(); }
  const std::string& target() const { return record.target_customer_id(); }
  keys::CustomerKeys source_keys() const { return keys::CustomerKeys(tenant, source()); }
  keys::CustomerKeys target_keys() const { return keys::CustomerKeys(tenant, target()); }
};

// What ReadEngagement reads of a customer (the parts of libs/merge/lua/stage_engagement.lua).
struct EngagementParts {
  bool records = false;   // cs, ca, fa; and du: the due time of each case's promise the
                          // due-promise index holds
  bool contacts = false;  // ct, cc
  bool signals = false;   // sg
};

// Reads a customer's engagement state as merge_stage_engagement's ("<part>|<name>", value)
// pairs, one command per key (each in its own slot: the customer's, or the due-promise
// index's). The customers must be held and their outboxes drained, so the index holds what
// their cases promise.
void ReadEngagement(redis::Client* client, const std::string& tenant,
                    const std::string& customer_id, EngagementParts parts, absl::Time deadline,
                    Callback<std::vector<std::string>> done);

// Copies `pairs` into the staging hash of customer `into` (merge_stage_engagement, chunks of at
// most kWriteChunkEntries pairs, in parallel: each is written once, whatever runs again).
// `done_field` is the marker of `into`'s merge state saying the staging was applied; when it
// is set, nothing is written. `only_merge`: see stage_engagement.lua.
void StageEngagement(redis::Client* client, const keys::CustomerKeys& into,
                     const std::string& merge_id, const std::string& done_field,
                     const std::string& only_merge, std::vector<std::string> pairs,
                     absl::Time deadline, absl::AnyInvocable<void(absl::Status)> done);

// merge_move_index for the index entry of an identifiers-hash field ("<type>:<value>").
lua::MergeMoveIndex MoveIndexCall(const std::string& tenant, const std::string& field,
                                  const std::string& new_owner, const std::string& old_owner);

// merge_release_notify: the customer's lock released, `message` published to its watchers.
lua::MergeReleaseNotify ReleaseNotifyCall(const keys::CustomerKeys& customer,
                                          const std::string& merge_id, const std::string& message);

}  // namespace onestory::merge
