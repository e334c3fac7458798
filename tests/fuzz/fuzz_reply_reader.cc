// Redis replies (libs/redis/reply.h, ReplyReader) from arbitrary bytes.
//
// The first byte picks the size of the pieces the rest is fed in (as reads from a socket would
// hand them over), and which replies are asked for in place. Parsing never crashes; fed whole
// or in pieces, the reader gives the same replies and the same error, at the same point; each
// reply, written back as RESP, parses to itself. Asked for in place (Next(true), for some
// replies and not others, as a connection does), the same replies and error come, each array
// (not nil) as a RespView of the same values, whose bytes read to them again.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/redis/reply.h"
#include "tests/fuzz/fuzz_check.h"

namespace onestory::redis {
namespace {

struct Outcome {
  std::vector<Reply> replies;
  absl::Status error;
};

// The replies in `bytes` fed in pieces of `piece` bytes; reply i asked for in place when bit
// i % 8 of `in_place` is set.
Outcome ReadAll(absl::string_view bytes, size_t piece, uint8_t in_place = 0) {
  ReplyReader reader;
  Outcome out;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    absl::string_view chunk = bytes.substr(at, piece);
    reader.Feed(chunk.data(), chunk.size());
    for (;;) {
      bool view = (in_place >> (out.replies.size() % 8)) & 1;
      absl::StatusOr<std::optional<Reply>> r = reader.Next(view);
      if (!r.ok()) {
        out.error = r.status();
        return out;
      }
      if (!r->has_value()) break;
      out.replies.push_back(std::move(**r));
    }
  }
  return out;
}

bool Same(const Reply& a, const Reply& b) {
  if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
      a.elements.size() != b.elements.size()) {
    return false;
  }
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (!Same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

bool Same(const Outcome& a, const Outcome& b) {
  if (a.error != b.error || a.replies.size() != b.replies.size()) return false;
  for (size_t i = 0; i < a.replies.size(); ++i) {
    if (!Same(a.replies[i], b.replies[i])) return false;
  }
  return true;
}

// RESP2 for a parsed reply (a nil as a nil bulk string, as Redis mostly sends it).
void Write(const Reply& r, std::string* out) {
  switch (r.type) {
    case Reply::Type::kNil:
      *out += "$-1\r\n";
      return;
    case Reply::Type::kStatus:
      absl::StrAppend(out, "+", r.str, "\r\n");
      return;
    case Reply::Type::kError:
      absl::StrAppend(out, "-", r.str, "\r\n");
      return;
    case Reply::Type::kInteger:
      absl::StrAppend(out, ":", r.integer, "\r\n");
      return;
    case Reply::Type::kString:
      absl::StrAppend(out, "$", r.str.size(), "\r\n", r.str, "\r\n");
      return;
    case Reply::Type::kArray:
      absl::StrAppend(out, "*", r.elements.size(), "\r\n");
      for (const Reply& e : r.elements) Write(e, out);
      return;
    case Reply::Type::kArrayView:
      absl::StrAppend(out, r.view->bytes());
      return;
  }
}

// An array read in place, as a Reply (checking that its bytes read to it again); the reply
// itself for any other.
Reply InPlace(const Reply& r) {
  if (r.type != Reply::Type::kArrayView) return r;
  FUZZ_CHECK(r.view != nullptr);
  FUZZ_CHECK(r.view->root().is_array());
  Reply out = r.view->root().ToReply();
  absl::StatusOr<RespView> again = RespView::Parse(std::string(r.view->bytes()));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Same(again->root().ToReply(), out));
  return out;
}

// `got` read as asked (in place or not) and the same as `want`, read as Replies.
void CheckSame(const Outcome& got, const Outcome& want, uint8_t in_place) {
  FUZZ_CHECK(got.error == want.error);
  FUZZ_CHECK(got.replies.size() == want.replies.size());
  for (size_t i = 0; i < got.replies.size(); ++i) {
    bool asked = (in_place >> (i % 8)) & 1;
    FUZZ_CHECK((got.replies[i].type == Reply::Type::kArrayView) ==
               (asked && want.replies[i].is_array()));
    FUZZ_CHECK(Same(InPlace(got.replies[i]), want.replies[i]));
  }
}

}  // namespace
}  // namespace onestory::redis

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace onestory::redis;  // NOLINT(build/namespaces)
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 16;
  absl::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  Outcome whole = ReadAll(bytes, bytes.size() + 1);
  Outcome pieces = ReadAll(bytes, piece);
  FUZZ_CHECK(Same(whole, pieces));
  // Every reply in place, then a mix picked by the first byte; whole and in pieces.
  for (uint8_t in_place : {uint8_t{0xff}, static_cast<uint8_t>(data[0] * 37 + 1)}) {
    CheckSame(ReadAll(bytes, bytes.size() + 1, in_place), whole, in_place);
    CheckSame(ReadAll(bytes, piece, in_place), whole, in_place);
  }
  if (!whole.error.ok()) {
    FUZZ_CHECK(absl::IsInternal(whole.error));
    FUZZ_CHECK(absl::StartsWith(whole.error.message(), "not RESP2: "));
  }
  std::string again;
  for (const Reply& r : whole.replies) Write(r, &again);
  Outcome reread = ReadAll(again, piece);
  FUZZ_CHECK(reread.error.ok());
  FUZZ_CHECK(reread.replies.size() == whole.replies.size());
  for (size_t i = 0; i < whole.replies.size(); ++i) {
    FUZZ_CHECK(Same(reread.replies[i], whole.replies[i]));
  }
  return 0;
}
