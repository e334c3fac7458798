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
constexpr size_t kKeptBufferBytes = 64 * 1024;

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

}  // namespace

ReplyReader::Found ReplyReader::ReadLine(absl::string_view buf, size_t at, Line* line,
                                         std::string* why) {
  const char* data = buf.data();
  const char* text = data + at + 1;
  const char* cr = static_cast<const char*>(std::memchr(text, '\r', buf.size() - at - 1));
  if (cr == nullptr || cr + 1 == data + buf.size()) return Found::kPartial;
  if (cr[1] != '\n') {
    *why = "a line ends with CR alone";
    return Found::kMalformed;
  }
  line->type = data[at];
  line->text = absl::string_view(text, static_cast<size_t>(cr - text));
  line->n = 0;
  line->next = static_cast<size_t>(cr + 2 - data);
  switch (line->type) {
    case '+':
    case '-':
      return Found::kWhole;
    case ':':
      if (ParseNumber(text, cr, &line->n)) return Found::kWhole;
      *why = "an integer that is not a number";
      return Found::kMalformed;
    case '$':
      if (!ParseNumber(text, cr, &line->n) || line->n < -1 || line->n > kMaxBulkLength) {
        *why = "a bulk string length that is not -1 to 512 MB";
        return Found::kMalformed;
      }
      if (line->n < 0) return Found::kWhole;  // nil
      if (buf.size() - line->next < static_cast<size_t>(line->n) + 2) return Found::kPartial;
      line->next += static_cast<size_t>(line->n);
      if (data[line->next] != '\r' || data[line->next + 1] != '\n') {
        *why = "a bulk string longer than its length";
        return Found::kMalformed;
      }
      line->next += 2;
      return Found::kWhole;
    case '*':
      if (ParseNumber(text, cr, &line->n) && line->n >= -1) return Found::kWhole;
      *why = "an array count below -1";
      return Found::kMalformed;
    default:
      *why = absl::StrCat("type byte ", absl::CHexEscape(absl::string_view(data + at, 1)));
      return Found::kMalformed;
  }
}

ReplyReader::Found ReplyReader::Build(size_t* at, size_t depth, Reply* out,
                                      std::string* why) const {
  Line line;
  if (*at == buf_.size()) return Found::kPartial;
  Found found = ReadLine(buf_, *at, &line, why);
  if (found != Found::kWhole) return found;
  switch (line.type) {
    case '+':
    case '-':
      out->type = line.type == '+' ? Reply::Type::kStatus : Reply::Type::kError;
      out->str.assign(line.text.data(), line.text.size());
      break;
    case ':':
      out->type = Reply::Type::kInteger;
      out->integer = line.n;
      break;
    case '$':
      if (line.n < 0) break;  // nil
      out->type = Reply::Type::kString;
      out->str.assign(buf_.data() + line.next - 2 - line.n, static_cast<size_t>(line.n));
      break;
    case '*':
      if (line.n < 0) break;  // nil
      if (line.n > 0 && depth == kMaxDepth) {
        *why = "arrays nested deeper than 64";
        return Found::kMalformed;
      }
      out->type = Reply::Type::kArray;
      // Each element takes at least 3 bytes: a count beyond what is here is not all here yet.
      if (static_cast<size_t>(line.n) > (buf_.size() - line.next) / 3) return Found::kPartial;
      out->elements.resize(static_cast<size_t>(line.n));
      *at = line.next;
      for (Reply& element : out->elements) {
        found = Build(at, depth + 1, &element, why);
        if (found != Found::kWhole) return found;
      }
      return Found::kWhole;
  }
  *at = line.next;
  return Found::kWhole;
}

ReplyReader::Found ReplyReader::Scan(std::string* why) {
  Line line;
  while (scan_ < buf_.size()) {
    Found found = ReadLine(buf_, scan_, &line, why);
    if (found != Found::kWhole) return found;
    scan_ = line.next;
    if (line.type == '*' && line.n > 0) {
      if (open_.size() == kMaxDepth) {
        *why = "arrays nested deeper than 64";
        return Found::kMalformed;
      }
      open_.push_back(line.n);
      continue;
    }
    // That value is whole, and so is each array it was the last element of.
    while (!open_.empty() && --open_.back() == 0) open_.pop_back();
    if (open_.empty()) return Found::kWhole;
  }
  return Found::kPartial;
}

absl::StatusOr<std::optional<Reply>> ReplyReader::Next() {
  if (pos_ == buf_.size()) {  // all read: the buffer starts over
    if (buf_.capacity() > kKeptBufferBytes) {
      std::string().swap(buf_);  // a large reply's memory is not kept for the next small one
    } else {
      buf_.clear();
    }
    pos_ = scan_ = 0;
    return std::nullopt;
  }
  std::string why;
  std::optional<Reply> reply(std::in_place);
  size_t at = pos_;
  // Most replies are whole when their first bytes are read: built at once, in one pass.
  Found found = scan_ == pos_ && open_.empty() ? Build(&at, 0, &*reply, &why) : Found::kPartial;
  if (found == Found::kPartial) {
    // Not all here: scan on as bytes arrive; build once the reply is whole.
    found = Scan(&why);
    if (found == Found::kPartial) {
      // Only the unfinished reply is kept; the bytes still to come are appended after it.
      buf_.erase(0, pos_);
      scan_ -= pos_;
      pos_ = 0;
      return std::nullopt;
    }
    if (found == Found::kWhole) {
      *reply = Reply();
      at = pos_;
      found = Build(&at, 0, &*reply, &why);
    }
  }
  if (found == Found::kMalformed) return absl::InternalError(absl::StrCat("not RESP2: ", why));
  pos_ = scan_ = at;  // Scan's arrays all closed when the reply did
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
