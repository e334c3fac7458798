// The state of one merge or unmerge being driven through its steps (MergeEngine::Run), the
// steps' ids, and what the steps of both share: the function calls both make (merge_move_index,
// merge_release_notify, the engagement keys of merge_swap and merge_remove). Parallel Redis calls
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
  kStage = 2,  // ends with the swap (failpoint "merge.swap" before it)
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

// The keys merge_swap and merge_remove share: both customers' engagement state, the tenant's
// due-promise index and open-case index (os_merge_engagement, libs/merge/lua/engagement.lua).
template <typename Call>
void SetEngagementKeys(const std::string& tenant, const keys::CustomerKeys& source,
                       const keys::CustomerKeys& target, Call* call) {
  call->source_conversation_records = source.conversation_records();
  call->source_cases = source.cases();
  call->source_facts = source.facts();
  call->source_contacts = source.contacts();
  call->source_contact_channels = source.contact_channels();
  call->source_signals = source.signals();
  call->target_conversation_records = target.conversation_records();
  call->target_cases = target.cases();
  call->target_facts = target.facts();
  call->target_contacts = target.contacts();
  call->target_contact_channels = target.contact_channels();
  call->target_signals = target.signals();
  call->due_promises = keys::DuePromisesKey();
  call->journey_open = keys::TenantKeys(tenant).journey_open();
}

// merge_move_index for the index entry of an identifiers-hash field ("<type>:<value>").
lua::MergeMoveIndex MoveIndexCall(const std::string& tenant, const std::string& field,
                                  const std::string& new_owner, const std::string& old_owner);

// merge_release_notify: the customer's lock released, `message` published to its watchers.
lua::MergeReleaseNotify ReleaseNotifyCall(const keys::CustomerKeys& customer,
                                          const std::string& merge_id, const std::string& message);

}  // namespace onestory::merge
