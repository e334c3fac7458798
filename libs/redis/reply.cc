#include "libs/redis/reply.h"

#include <hiredis/hiredis.h>

#include <cstring>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace onestory::redis {

namespace {

constexpr size_t kMaxDepth = 64;
constexpr int64_t kMaxBulkLength = int64_t{512} * 1024 * 1024;

// The number written on [from, to): digits, with a '-' before them for a negative one, within
// int64's range.
bool ParseNumber(const char* from, const char* to, int64_t* out) {
  const bool negative = from < to && *from == '-';
  if (negative) ++from;
  if (from == to || to - from > 19) return false;  // 19 digits cannot overflow a uint64
  uint64_t n = 0;
  for (; from < to; ++from) {
    if (*from < '0' || *from > '9') return false;
    n = n * 10 + static_cast<uint64_t>(*from - '0');
  }
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + (negative ? 1 : 0)) {
    return false;
  }
  *out = static_cast<int64_t>(negative ? 0 - n : n);  // modular: INT64_MIN stays exact
  return true;
}

absl::Status Malformed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("not RESP2: ", what));
}

}  // namespace

absl::StatusOr<bool> ReplyReader::Complete() {
  const char* data = buf_.data();
  const size_t size = buf_.size();
  while (scan_ < size) {
    // A value starts with a line: its type byte, then its text, length or count, then CRLF.
    const char* line = data + scan_ + 1;
    const char* cr = static_cast<const char*>(std::memchr(line, '\r', size - scan_ - 1));
    if (cr == nullptr || cr + 1 == data + size) return false;  // the line is not all here
    if (cr[1] != '\n') return Malformed("a line ends with CR alone");
    size_t next = static_cast<size_t>(cr + 2 - data);
    int64_t n = 0;
    switch (data[scan_]) {
      case '+':
      case '-':
        break;
      case ':':
        if (!ParseNumber(line, cr, &n)) return Malformed("an integer that is not a number");
        break;
      case '$':
        if (!ParseNumber(line, cr, &n) || n < -1 || n > kMaxBulkLength) {
          return Malformed("a bulk string length that is not -1 to 512 MB");
        }
        if (n >= 0) {
          if (size - next < static_cast<size_t>(n) + 2) return false;  // its bytes are not all here
          if (data[next + n] != '\r' || data[next + n + 1] != '\n') {
            return Malformed("a bulk string longer than its length");
          }
          next += static_cast<size_t>(n) + 2;
        }
        break;
      case '*':
        if (!ParseNumber(line, cr, &n) || n < -1) return Malformed("an array count below -1");
        if (n > 0) {
          if (open_.size() == kMaxDepth) return Malformed("arrays nested deeper than 64");
          open_.push_back(n);
          scan_ = next;
          continue;
        }
        break;
      default:
        return Malformed(
            absl::StrCat("type byte ", absl::CHexEscape(absl::string_view(data + scan_, 1))));
    }
    scan_ = next;
    // That value is whole, and so is each array it was the last element of.
    while (!open_.empty() && --open_.back() == 0) open_.pop_back();
    if (open_.empty()) return true;
  }
  return false;
}

void ReplyReader::Build(size_t* at, Reply* out) const {
  const char* data = buf_.data();
  const char* line = data + *at + 1;
  const char* cr = static_cast<const char*>(std::memchr(line, '\r', buf_.size() - *at - 1));
  const char type = data[*at];
  *at = static_cast<size_t>(cr + 2 - data);
  int64_t n = 0;
  switch (type) {
    case '+':
    case '-':
      out->type = type == '+' ? Reply::Type::kStatus : Reply::Type::kError;
      out->str.assign(line, static_cast<size_t>(cr - line));
      return;
    case ':':
      out->type = Reply::Type::kInteger;
      ParseNumber(line, cr, &out->integer);
      return;
    case '$':
      ParseNumber(line, cr, &n);
      if (n < 0) return;  // nil
      out->type = Reply::Type::kString;
      out->str.assign(data + *at, static_cast<size_t>(n));
      *at += static_cast<size_t>(n) + 2;
      return;
    case '*':
      ParseNumber(line, cr, &n);
      if (n < 0) return;  // nil
      out->type = Reply::Type::kArray;
      out->elements.resize(static_cast<size_t>(n));
      for (Reply& element : out->elements) Build(at, &element);
      return;
  }
}

absl::StatusOr<std::optional<Reply>> ReplyReader::Next() {
  if (pos_ == buf_.size()) {  // all read: the buffer starts over, its memory kept
    buf_.clear();
    pos_ = scan_ = 0;
    return std::nullopt;
  }
  absl::StatusOr<bool> complete = Complete();
  if (!complete.ok()) return complete.status();
  if (!*complete) {
    // Only the unfinished reply is kept; the bytes still to come are appended after it.
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
    return std::nullopt;
  }
  std::optional<Reply> reply(std::in_place);
  Build(&pos_, &*reply);
  return reply;
}

Reply Reply::FromHiredis(const redisReply* r) {
  Reply out;
  if (r == nullptr) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(FromHiredis(r->element[i]));
      }
      break;
    default:
      out.type = Type::kNil;
  }
  return out;
}

absl::Status ErrorToStatus(absl::string_view text) {
  struct Mapping {
    absl::string_view prefix;
    absl::StatusCode code;
  };
  static constexpr Mapping kMappings[] = {
      {"OS_INVALID ", absl::StatusCode::kInvalidArgument},
      {"OS_NOT_FOUND ", absl::StatusCode::kNotFound},
      {"OS_CONFLICT ", absl::StatusCode::kFailedPrecondition},
      {"OS_EXISTS ", absl::StatusCode::kAlreadyExists},
      {"OS_LIMIT ", absl::StatusCode::kResourceExhausted},
      {"OS_BUSY ", absl::StatusCode::kAborted},
      {"OS_MOVED ", absl::StatusCode::kFailedPrecondition},
  };
  // Redis prefixes errors raised by a script with the script's location in some versions;
  // the OS_ marker is found wherever it stands.
  for (const auto& m : kMappings) {
    size_t pos = text.find(m.prefix);
    if (pos != absl::string_view::npos) {
      absl::string_view message = text.substr(pos + m.prefix.size());
      size_t script_suffix = message.find(" script: ");
      if (script_suffix != absl::string_view::npos) message = message.substr(0, script_suffix);
      return absl::Status(m.code, message);
    }
  }
  // "OOM command not allowed when used memory > 'maxmemory'.", bare or inside a script's error.
  if (absl::StartsWith(text, "OOM ") || absl::StrContains(text, "OOM command not allowed")) {
    return absl::ResourceExhaustedError(
        absl::StrCat("redis is out of memory (its maxmemory is reached); the write was refused "
                     "and changed nothing: ",
                     text));
  }
  // Compared by the whole first word: BUSYGROUP or BUSYKEY are not BUSY.
  absl::string_view code = text.substr(0, text.find(' '));
  for (absl::string_view transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (code == transient) return absl::UnavailableError(absl::StrCat("redis: ", text));
  }
  return absl::InternalError(absl::StrCat("redis error: ", text));
}

}  // namespace onestory::redis
