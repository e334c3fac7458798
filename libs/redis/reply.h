// Reply: an owned copy of one Redis reply, and the mapping of Redis errors to absl::Status.
//
// OneStory's Lua scripts signal domain errors with error replies whose first word names the
// status ("OS_NOT_FOUND customer cus_1 does not exist"); ErrorToStatus maps them, so a script's
// refusal reaches the caller as NOT_FOUND / FAILED_PRECONDITION / ... with its message.
// Thread-safe (values).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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

// Parses RESP2 replies out of the bytes of a connection as they arrive:
//
//   reader.Feed(buf, got);
//   for (;;) {
//     ASSIGN_OR_RETURN(std::optional<Reply> reply, reader.Next());
//     if (!reply.has_value()) break;  // the rest is not a whole reply yet
//     ...
//   }
//
// Next builds a reply in one pass over its bytes, each value in its place and each string copied
// once. When the bytes end inside it, it scans on as more arrive (remembering how far it got, so
// a large reply arriving in many reads is scanned once) and builds it once it is whole. Once
// everything fed is read, a buffer grown past 64 KiB (a large reply) is released. A reply nested
// deeper than 64 arrays, a bulk string longer than 512 MB (Redis's own limit) or bytes that are not
// RESP2 are an INTERNAL status, after which the reader is unusable (the connection is closed).
// Thread-compatible.
class ReplyReader {
 public:
  void Feed(const char* data, size_t size) { buf_.append(data, size); }
  absl::StatusOr<std::optional<Reply>> Next();

 private:
  // What reading found: the whole value, its start only (the rest has not arrived), or bytes
  // that are not RESP2 (*why says what).
  enum class Found { kWhole, kPartial, kMalformed };
  // A value's first line: its type byte, its text (a status or an error) or its number (an
  // integer, a bulk string's length, an array's count), and where the next value starts (past
  // a bulk string's bytes).
  struct Line {
    char type = 0;
    absl::string_view text;
    int64_t n = 0;
    size_t next = 0;
  };
  // Reads the line of the value at `at` of `buf`.
  static Found ReadLine(absl::string_view buf, size_t at, Line* line, std::string* why);
  // Builds the value at *at, `depth` arrays deep, into *out and moves *at past it.
  Found Build(size_t* at, size_t depth, Reply* out, std::string* why) const;
  // Scans on from scan_ for the end of the reply starting at pos_.
  Found Scan(std::string* why);

  std::string buf_;
  size_t pos_ = 0;   // where the next reply starts
  size_t scan_ = 0;  // where Scan goes on from: the first value not yet known whole
  // Scan's arrays still open: how many of their elements are not yet known whole.
  std::vector<int64_t> open_;
};

// The status for a Redis error reply (its text, as Redis sent it). OS_* prefixes map to the
// status they name (OS_BUSY: ABORTED; OS_MOVED: FAILED_PRECONDITION, see libs/identity/merged.h);
// LOADING, BUSY, MASTERDOWN, TRYAGAIN and CLUSTERDOWN to UNAVAILABLE; OOM (Redis reached its
// `maxmemory` and, with policy noeviction, refuses writes; also inside a script) to
// RESOURCE_EXHAUSTED, whose message says so: a retry fails the same way until memory is freed or
// raised; anything else to INTERNAL.
absl::Status ErrorToStatus(absl::string_view error_text);

}  // namespace onestory::redis
