// Records: the JSON values libs/engagement keeps in Redis (written and changed by the functions of
// libs/engagement/lua/ with Lua's cjson; every field of each is described once, in the header of
// libs/engagement/lua/case.lua) turned into the API's messages: this file is their one C++
// parser. Plus the checks and limits shared by every engagement operation (facts, actors,
// audiences); the limits the functions enforce are passed to them from here as named arguments
// (max_open_cases, max_facts, max_owner_history, forget_resolved_ms, forget_over_cases, batch,
// max_examined), so each is defined once.
//
//   ASSIGN_OR_RETURN(Record r, ParseRecord(reply.str));
//   v1::Case c = CaseFromRecord(case_id, customer_id, r);
//
// Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/common/json_value.h"
#include "onestory/v1/alert.pb.h"
#include "onestory/v1/case.pb.h"
#include "onestory/v1/common.pb.h"
#include "onestory/v1/context.pb.h"
#include "onestory/v1/conversation.pb.h"

namespace onestory::engagement {

inline constexpr int kMaxFactsPerRequest = 32;
// Current (unexpired) facts per customer: RecordFacts and Handoff refuse more (OS_LIMIT).
inline constexpr int kMaxFactsPerCustomer = 200;
// Open cases per customer: OpenCase refuses more (OS_LIMIT).
inline constexpr int kMaxOpenCasesPerCustomer = 100;
// Owner changes a case keeps in its owner_history (the oldest go first).
inline constexpr int kMaxOwnerHistory = 50;
// OpenCase forgets a customer's cases resolved longer than this ago (90 days)...
inline constexpr int64_t kResolvedCaseKeepMs = int64_t{90} * 24 * 60 * 60 * 1000;
// ...once the customer has more than this many cases (so a short list is not read twice).
inline constexpr int kCasesBeforeForget = 150;
// ListAlerts reads a bucket's alert log this many entries at a time...
inline constexpr int kAlertListBatch = 200;
// ...and examines at most this many per call, shared by the buckets it reads (each at least a
// page when acknowledged alerts are included, where every entry examined is listed): a page
// may come back short, with a token to go on, so one call stays short however few alerts match.
inline constexpr int kAlertListMaxExamined = 2000;
inline constexpr size_t kMaxFactValueBytes = 1024;
inline constexpr size_t kMaxTopicBytes = 256;
inline constexpr size_t kMaxNoteBytes = 4096;
inline constexpr size_t kMaxReasonBytes = 1024;
inline constexpr size_t kMaxOutcomeBytes = 256;
inline constexpr size_t kMaxWrapUpBytes = 64;
inline constexpr size_t kMaxStageBytes = 64;
inline constexpr int kMaxStages = 32;

// A stored record: one JSON object (libs/common/json_value.h).
using Record = JsonValue;

// A record as stored; INTERNAL when it is not a JSON object.
absl::StatusOr<Record> ParseRecord(absl::string_view json);

v1::Conversation ConversationFromRecord(const std::string& conversation_id,
                                        const std::string& customer_id, const Record& r);
v1::Case CaseFromRecord(const std::string& case_id, const std::string& customer_id,
                        const Record& r);
v1::Fact FactFromRecord(const Record& r);
v1::RepeatContact RepeatFromRecord(const Record& r);
// Sets acknowledged, acknowledged_by and acknowledged_at of `alert` from an acknowledgement.
void AckFromRecord(const Record& r, v1::Alert* alert);

// The order GetContext shows facts in: verifications, promises, collected values, steps.
int FactRank(v1::FactType type);

// Checks a fact to record (INVALID_ARGUMENT naming `field`.<name> and the reason).
absl::Status ValidateFact(absl::string_view field, const v1::Fact& fact, int64_t now_ms);
// An actor who acts: type required; id required for AGENT and BOT.
absl::Status ValidateActor(absl::string_view field, const v1::Actor& actor, bool required);
// A channel: required and known.
absl::Status ValidateChannel(absl::string_view field, int channel, bool required);
// An optional visibility: a known Audience value.
absl::Status ValidateVisibility(absl::string_view field, int visibility);
// A journey stage name: 1-64 characters of [a-z0-9_-].
absl::Status ValidateStage(absl::string_view field, absl::string_view stage);
// A future time (promised_by, expires_at, due_at): set, valid and after now.
absl::Status ValidateFuture(absl::string_view field, const google::protobuf::Timestamp& ts,
                            int64_t now_ms);

}  // namespace onestory::engagement
