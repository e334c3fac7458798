// A merge's stored record: the hash keys::MergeKey(tenant, merge id) holds the serialized
// MergeRecord ("rec"), the next step to run ("step"), the phase it belongs to ("phase": merge
// or unmerge) and when it last changed ("updated_at", ms); keys::PendingMergesKey() lists
// "<tenant>/<merge id>" while steps are left.
//
//   client->Command({"HMGET", keys::MergeKey(t, m), "rec", "step"}, deadline, [](auto r) {
//     absl::StatusOr<StoredRecord> stored = ParseStoredRecord(m, *r);
//   });
//   client->Fcall(SaveStepCall(t, record, kStage, NowMillis()), deadline, cb);
//
// Internal to libs/merge. Pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/lua/merge_save_step.h"
#include "libs/redis/reply.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::merge {

struct StoredRecord {
  v1::MergeRecord record;
  std::string serialized;  // the "rec" field as stored
  int step = 0;
};

// `reply`: HMGET <record> rec step. NOT_FOUND "merge_id: no merge <m>" when there is no record;
// INTERNAL when it cannot be read.
absl::StatusOr<StoredRecord> ParseStoredRecord(absl::string_view merge_id,
                                               const redis::Reply& reply);

// "merge" while merging or merged, "unmerge" after: a record's steps only go forward within
// its phase (merge_save_step).
const char* Phase(const v1::MergeRecord& record);

// The merge_save_step call saving `record` (serialized) with its next step.
lua::MergeSaveStep SaveStepCall(const std::string& tenant, const v1::MergeRecord& record,
                                const std::string& serialized, int step, int64_t now_ms);

// The pending set's member of a merge, and back (false for a malformed member).
std::string PendingMember(absl::string_view tenant, absl::string_view merge_id);
bool ParsePendingMember(absl::string_view member, std::string* tenant, std::string* merge_id);

}  // namespace onestory::merge
