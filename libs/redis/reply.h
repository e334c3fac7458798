// Reply: an owned copy of one Redis reply, and the mapping of Redis errors to absl::Status.
//
// OneStory's Lua scripts signal domain errors with error replies whose first word names the
// status ("OS_NOT_FOUND customer cus_1 does not exist"); ErrorToStatus maps them, so a script's
// refusal reaches the caller as NOT_FOUND / FAILED_PRECONDITION / ... with its message.
// Thread-safe (values).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

struct redisReader;
struct redisReply;

namespace onestory::redis {

struct Reply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;              // kString, kStatus, kError
  int64_t integer = 0;          // kInteger
  std::vector<Reply> elements;  // kArray

  bool is_nil() const { return type == Type::kNil; }
  bool is_array() const { return type == Type::kArray; }
  bool is_string() const { return type == Type::kString || type == Type::kStatus; }

  // A copy of a reply hiredis parsed into its own redisReply (its synchronous API).
  static Reply FromHiredis(const redisReply* r);
};

// A hiredis redisReader (free with redisReaderFree) whose replies are Reply values, parsed
// straight into them: redisReaderGetReply gives a `Reply*` the caller owns (delete it).
redisReader* NewReplyReader();

// The status for a Redis error reply (its text, as Redis sent it). OS_* prefixes map to the
// status they name (OS_BUSY: ABORTED; OS_MOVED: FAILED_PRECONDITION, see libs/identity/merged.h);
// LOADING, BUSY, MASTERDOWN, TRYAGAIN and CLUSTERDOWN to UNAVAILABLE; OOM (Redis reached its
// `maxmemory` and, with policy noeviction, refuses writes; also inside a script) to
// RESOURCE_EXHAUSTED, whose message says so: a retry fails the same way until memory is freed or
// raised; anything else to INTERNAL.
absl::Status ErrorToStatus(absl::string_view error_text);

}  // namespace onestory::redis
