#include "libs/merge/merge_record.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"

namespace onestory::merge {

absl::StatusOr<StoredRecord> ParseStoredRecord(absl::string_view merge_id,
                                               const redis::Reply& reply) {
  if (reply.elements.size() != 2 || reply.elements[0].is_nil()) {
    return absl::NotFoundError(absl::StrCat("merge_id: no merge ", merge_id));
  }
  StoredRecord out;
  out.serialized = reply.elements[0].str;
  if (!out.record.ParseFromString(out.serialized) ||
      !absl::SimpleAtoi(reply.elements[1].str, &out.step)) {
    return absl::InternalError(absl::StrCat("merge ", merge_id, " record unreadable"));
  }
  return out;
}

const char* Phase(const v1::MergeRecord& record) {
  bool unmerge = record.state() == v1::MergeRecord::STATE_UNMERGING ||
                 record.state() == v1::MergeRecord::STATE_UNMERGED;
  return unmerge ? "unmerge" : "merge";
}

lua::MergeSaveStep SaveStepCall(const std::string& tenant, const v1::MergeRecord& record,
                                const std::string& serialized, int step, int64_t now_ms) {
  lua::MergeSaveStep call;
  call.record = keys::MergeKey(tenant, record.merge_id());
  call.rec = serialized;
  call.step = step;
  call.phase = Phase(record);
  call.now_ms = now_ms;
  return call;
}

std::string PendingMember(absl::string_view tenant, absl::string_view merge_id) {
  return absl::StrCat(tenant, "/", merge_id);
}

bool ParsePendingMember(absl::string_view member, std::string* tenant, std::string* merge_id) {
  size_t slash = member.find('/');
  if (slash == absl::string_view::npos) return false;
  *tenant = std::string(member.substr(0, slash));
  *merge_id = std::string(member.substr(slash + 1));
  return true;
}

}  // namespace onestory::merge
