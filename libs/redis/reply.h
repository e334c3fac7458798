// Reply: an owned copy of one Redis reply, and the mapping of Redis errors to absl::Status.
//
// OneStory's Lua scripts signal domain errors with error replies whose first word names the
// status ("OS_NOT_FOUND customer cus_1 does not exist"); ErrorToStatus maps them, so a script's
// refusal reaches the caller as NOT_FOUND / FAILED_PRECONDITION / ... with its message.
// Thread-safe (values).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct redisReply;

namespace onestory::redis {

class RespView;

struct Reply {
  // kArrayView: an array read in place (`view`), for a command sent asking for it
  // (Connection::Send's `in_place`), instead of a Reply per value.
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray, kArrayView };
  Type type = Type::kNil;
  std::string str;                       // kString, kStatus, kError
  int64_t integer = 0;                   // kInteger
  std::vector<Reply> elements;           // kArray
  std::shared_ptr<const RespView> view;  // kArrayView

  bool is_nil() const { return type == Type::kNil; }
  bool is_array() const { return type == Type::kArray; }  // not kArrayView: read `view`
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
// Next(/*in_place=*/true) gives an array reply as Type::kArrayView: read in place in the same one
// pass, its bytes copied once, not a Reply per value (any other reply as usual); read so, an
// array over 4 GiB is refused as well.
// Thread-compatible.
class ReplyReader {
 public:
  void Feed(const char* data, size_t size) { buf_.append(data, size); }
  absl::StatusOr<std::optional<Reply>> Next(bool in_place = false);

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
  friend class RespView;
  // Builds the value at *at, `depth` arrays deep, into *out and moves *at past it.
  Found Build(size_t* at, size_t depth, Reply* out, std::string* why) const;
  // Scans on from scan_ for the end of the reply starting at pos_.
  Found Scan(std::string* why);
  // Reads the reply at pos_ with read(), which starts over each time it is called: at once when
  // the reply is all here, else once Scan finds it whole (kPartial until then).
  template <typename Read>
  Found ReadWhole(Read read, std::string* why);
  // Next for an array (its first byte `*`) read in place; a nil array comes as a nil Reply.
  absl::StatusOr<std::optional<Reply>> NextView();

  std::string buf_;
  size_t pos_ = 0;   // where the next reply starts
  size_t scan_ = 0;  // where Scan goes on from: the first value not yet known whole
  // Scan's arrays still open: how many of their elements are not yet known whole.
  std::vector<int64_t> open_;
};

// A reply read in place: its RESP bytes, and one node per value, a string's pointing into the
// bytes. Where a reply of many values is read once (GetContext's snapshot), this costs about half
// of building a Reply per value, and freeing it almost nothing.
//
//   const RespView& view = *reply.view;  // a Type::kArrayView
//   for (RespView::Value entry : view.root()) { ... entry[0].str() ... }
//
// Thread-compatible. Values, and the strings they give, are valid while their view lives where it
// is: moving the view invalidates them (a Reply holds its view behind a shared pointer).
class RespView {
 private:
  struct Node {
    Reply::Type type = Reply::Type::kNil;
    uint32_t offset = 0;  // of a string's, status's or error's text in bytes_
    uint32_t length = 0;
    uint32_t size = 0;  // an array's elements
    uint32_t end = 0;   // the index past this value's own nodes (its next sibling's)
    int64_t integer = 0;
  };

 public:
  class Iterator;
  // One value of the reply: a cheap handle.
  class Value {
   public:
    Reply::Type type() const { return node().type; }
    bool is_array() const { return type() == Reply::Type::kArray; }
    bool is_string() const {
      return type() == Reply::Type::kString || type() == Reply::Type::kStatus;
    }
    // A string's, status's or error's text; empty for other values.
    absl::string_view str() const {
      return absl::string_view(view_->bytes_.data() + node().offset, node().length);
    }
    int64_t integer() const { return node().integer; }
    // An array's elements (0 for other values: an empty range), iterated in order.
    size_t size() const { return node().size; }
    Iterator begin() const;
    Iterator end() const;
    // An array's i-th element, walked to; i < size().
    Value operator[](size_t i) const;
    // The same value as a Reply (copies it).
    Reply ToReply() const;

   private:
    friend class RespView;
    Value(const RespView* view, uint32_t index) : view_(view), index_(index) {}
    const Node& node() const { return view_->nodes_[index_]; }
    const RespView* view_;
    uint32_t index_;
  };

  class Iterator {
   public:
    Value operator*() const { return Value(view_, index_); }
    Iterator& operator++() {
      index_ = view_->nodes_[index_].end;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return index_ != other.index_; }

   private:
    friend class Value;
    Iterator(const RespView* view, uint32_t index) : view_(view), index_(index) {}
    const RespView* view_;
    uint32_t index_;
  };

  // Reads `bytes`, which must hold exactly one RESP2 reply; INTERNAL ("not RESP2: ...") for
  // anything else, with ReplyReader's limits.
  static absl::StatusOr<RespView> Parse(std::string bytes);

  Value root() const { return Value(this, 0); }
  // The reply as Redis sent it.
  absl::string_view bytes() const { return bytes_; }

 private:
  friend class ReplyReader;
  RespView() = default;
  // Reads the reply at `at` of `buf` into nodes_ (offsets from `at`) and sets *end past it. On
  // kPartial (the reply is not all in `buf`) or kMalformed (*why says why) nodes_ holds a part:
  // clear it before reading again.
  ReplyReader::Found Read(absl::string_view buf, size_t at, size_t* end, std::string* why);

  std::string bytes_;
  std::vector<Node> nodes_;  // in the order of the bytes: an array, then its elements' nodes
};

inline RespView::Iterator RespView::Value::begin() const { return Iterator(view_, index_ + 1); }
inline RespView::Iterator RespView::Value::end() const {
  return Iterator(view_, is_array() ? node().end : index_ + 1);
}

// The status for a Redis error reply (its text, as Redis sent it). OS_* prefixes map to the
// status they name (OS_BUSY: ABORTED; OS_MOVED: FAILED_PRECONDITION, see libs/identity/merged.h);
// LOADING, BUSY, MASTERDOWN, TRYAGAIN and CLUSTERDOWN to UNAVAILABLE; OOM (Redis reached its
// `maxmemory` and, with policy noeviction, refuses writes; also inside a script) to
// RESOURCE_EXHAUSTED, whose message says so: a retry fails the same way until memory is freed or
// raised; anything else to INTERNAL.
absl::Status ErrorToStatus(absl::string_view error_text);

}  // namespace onestory::redis
