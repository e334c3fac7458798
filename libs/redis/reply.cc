#include "libs/redis/reply.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>

#include "absl/container/inlined_vector.h"
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

template <typename Read>
ReplyReader::Found ReplyReader::ReadWhole(Read read, std::string* why) {
  // Most replies are whole when their first bytes are read: read at once, in one pass.
  Found found = scan_ == pos_ && open_.empty() ? read() : Found::kPartial;
  if (found != Found::kPartial) return found;
  // Not all here: scan on as bytes arrive; read once the reply is whole.
  found = Scan(why);
  if (found == Found::kPartial) {
    // Only the unfinished reply is kept; the bytes still to come are appended after it.
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
    return found;
  }
  return found == Found::kWhole ? read() : found;
}

absl::StatusOr<std::optional<Reply>> ReplyReader::Next(bool in_place) {
  if (pos_ == buf_.size()) {  // all read: the buffer starts over
    if (buf_.capacity() > kKeptBufferBytes) {
      std::string().swap(buf_);  // a large reply's memory is not kept for the next small one
    } else {
      buf_.clear();
    }
    pos_ = scan_ = 0;
    return std::nullopt;
  }
  if (in_place && buf_[pos_] == '*') return NextView();
  std::string why;
  std::optional<Reply> reply(std::in_place);
  size_t at = pos_;
  Found found = ReadWhole(
      [&] {
        *reply = Reply();
        at = pos_;
        return Build(&at, 0, &*reply, &why);
      },
      &why);
  if (found == Found::kPartial) return std::nullopt;
  if (found == Found::kMalformed) return absl::InternalError(absl::StrCat("not RESP2: ", why));
  pos_ = scan_ = at;  // Scan's arrays all closed when the reply did
  return reply;
}

absl::StatusOr<std::optional<Reply>> ReplyReader::NextView() {
  std::string why;
  auto view = std::shared_ptr<RespView>(new RespView());
  size_t end = 0;
  Found found = ReadWhole(
      [&] {
        view->nodes_.clear();
        return view->Read(buf_, pos_, &end, &why);
      },
      &why);
  if (found == Found::kPartial) return std::nullopt;
  if (found == Found::kMalformed) return absl::InternalError(absl::StrCat("not RESP2: ", why));
  std::optional<Reply> reply(std::in_place);
  if (view->root().is_array()) {  // else a nil array: a nil Reply
    view->bytes_.assign(buf_, pos_, end - pos_);
    reply->type = Reply::Type::kArrayView;
    reply->view = std::move(view);
  }
  pos_ = scan_ = end;
  return reply;
}

ReplyReader::Found RespView::Read(absl::string_view buf, size_t at, size_t* end, std::string* why) {
  using Found = ReplyReader::Found;
  const size_t base = at;
  // About one value per 32 bytes in the replies read this way (stream entries, hashes), from
  // what the buffer holds (the reply and maybe others after it), but at most 16 KiB's worth: a
  // larger reply grows the nodes as it is read.
  nodes_.reserve(std::min<size_t>(buf.size() - at, 16 * 1024) / 32 + 8);
  struct Open {
    uint32_t node;
    int64_t left;  // elements not yet read
  };
  absl::InlinedVector<Open, 8> open;
  do {
    ReplyReader::Line line;
    if (at == buf.size()) return Found::kPartial;
    Found found = ReplyReader::ReadLine(buf, at, &line, why);
    if (found != Found::kWhole) return found;
    if (line.next - base > std::numeric_limits<uint32_t>::max()) {
      *why = "a reply over 4 GiB";
      return Found::kMalformed;
    }
    const auto index = static_cast<uint32_t>(nodes_.size());
    Node& node = nodes_.emplace_back();
    at = line.next;
    switch (line.type) {
      case '+':
      case '-':
        node.type = line.type == '+' ? Reply::Type::kStatus : Reply::Type::kError;
        node.offset = static_cast<uint32_t>(line.text.data() - buf.data() - base);
        node.length = static_cast<uint32_t>(line.text.size());
        break;
      case ':':
        node.type = Reply::Type::kInteger;
        node.integer = line.n;
        break;
      case '$':
        if (line.n < 0) break;  // nil
        node.type = Reply::Type::kString;
        node.offset = static_cast<uint32_t>(line.next - 2 - line.n - base);
        node.length = static_cast<uint32_t>(line.n);
        break;
      case '*':
        if (line.n < 0) break;  // nil
        if (line.n > 0 && open.size() == kMaxDepth) {
          *why = "arrays nested deeper than 64";
          return Found::kMalformed;
        }
        node.type = Reply::Type::kArray;
        // Each element takes at least 3 bytes: a count beyond what is here is not all here yet.
        if (static_cast<size_t>(line.n) > (buf.size() - at) / 3) return Found::kPartial;
        node.size = static_cast<uint32_t>(line.n);
        if (line.n == 0) break;
        open.push_back(Open{index, line.n});
        continue;
    }
    node.end = index + 1;
    // That value is whole, and so is each array it was the last element of.
    while (!open.empty() && --open.back().left == 0) {
      nodes_[open.back().node].end = static_cast<uint32_t>(nodes_.size());
      open.pop_back();
    }
  } while (!open.empty());
  *end = at;
  return Found::kWhole;
}

absl::StatusOr<RespView> RespView::Parse(std::string bytes) {
  RespView view;
  std::string why;
  size_t end = 0;
  switch (view.Read(bytes, 0, &end, &why)) {
    case ReplyReader::Found::kWhole:
      break;
    case ReplyReader::Found::kPartial:
      return absl::InternalError("not RESP2: the reply ends early");
    case ReplyReader::Found::kMalformed:
      return absl::InternalError(absl::StrCat("not RESP2: ", why));
  }
  if (end != bytes.size()) return absl::InternalError("not RESP2: bytes after the reply");
  view.bytes_ = std::move(bytes);
  return view;
}

RespView::Value RespView::Value::operator[](size_t i) const {
  assert(is_array() && i < size());
  Iterator it = begin();
  for (; i > 0; --i) ++it;
  return *it;
}

Reply RespView::Value::ToReply() const {
  Reply out;
  out.type = type();
  switch (out.type) {
    case Reply::Type::kString:
    case Reply::Type::kStatus:
    case Reply::Type::kError:
      out.str = std::string(str());
      break;
    case Reply::Type::kInteger:
      out.integer = integer();
      break;
    case Reply::Type::kArray:
      out.elements.reserve(size());
      for (Value element : *this) out.elements.push_back(element.ToReply());
      break;
    case Reply::Type::kNil:
    case Reply::Type::kArrayView:  // never a node's
      break;
  }
  return out;
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
