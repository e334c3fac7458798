#include "libs/timeline/cursor.h"

#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace onestory::timeline {

bool IsStreamId(absl::string_view id) {
  StreamId parsed;
  return ParseStreamId(id, &parsed);
}

bool ParseStreamId(absl::string_view s, StreamId* out) {
  // Digits only: SimpleAtoi alone would accept surrounding whitespace or a sign.
  size_t dash = s.find('-');
  if (dash == absl::string_view::npos) return false;
  uint64_t* parts[2] = {&out->ms, &out->seq};
  absl::string_view texts[2] = {s.substr(0, dash), s.substr(dash + 1)};
  for (int i = 0; i < 2; ++i) {
    if (texts[i].empty() || texts[i].size() > 20) return false;
    for (char c : texts[i]) {
      if (c < '0' || c > '9') return false;
    }
    if (!absl::SimpleAtoi(texts[i], parts[i])) return false;  // out of range
  }
  return true;
}

std::string StreamId::str() const { return absl::StrCat(ms, "-", seq); }

int64_t StreamIdMillis(absl::string_view id) {
  // Digits up to the '-' or the end: at most 19, which cannot overflow a uint64.
  uint64_t ms = 0;
  size_t i = 0;
  for (; i < id.size() && id[i] != '-'; ++i) {
    if (id[i] < '0' || id[i] > '9' || i == 19) return 0;
    ms = ms * 10 + static_cast<uint64_t>(id[i] - '0');
  }
  if (i == 0 || ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return 0;
  return static_cast<int64_t>(ms);
}

namespace {

constexpr absl::string_view kCursorVersion = "c1|";

// Unpadded web-safe base64's length for `n` bytes (what absl::WebSafeBase64Escape writes).
size_t Base64Size(size_t n) { return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1); }

// Writes unpadded web-safe base64 of `in` at `out`; returns its end.
char* WriteBase64(const unsigned char* in, size_t n, char* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t bits = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    out[0] = kAlphabet[bits >> 18];
    out[1] = kAlphabet[(bits >> 12) & 0x3f];
    out[2] = kAlphabet[(bits >> 6) & 0x3f];
    out[3] = kAlphabet[bits & 0x3f];
    out += 4;
  }
  if (n - i == 0) return out;
  uint32_t bits = uint32_t{in[i]} << 16;
  if (n - i == 2) bits |= uint32_t{in[i + 1]} << 8;
  *out++ = kAlphabet[bits >> 18];
  *out++ = kAlphabet[(bits >> 12) & 0x3f];
  if (n - i == 2) *out++ = kAlphabet[(bits >> 6) & 0x3f];
  return out;
}

}  // namespace

CursorWriter::CursorWriter(absl::string_view customer_id) : customer_id_(customer_id) {
  std::string text = absl::StrCat(kCursorVersion, customer_id, "|");
  size_t whole = text.size() / 3 * 3;
  head_.resize(Base64Size(whole));
  WriteBase64(reinterpret_cast<const unsigned char*>(text.data()), whole, head_.data());
  rest_ = text.substr(whole);
}

size_t CursorWriter::Size(absl::string_view stream_id) const {
  return head_.size() + Base64Size(rest_.size() + stream_id.size());
}

char* CursorWriter::Write(absl::string_view stream_id, char* out) const {
  std::memcpy(out, head_.data(), head_.size());
  out += head_.size();
  // The rest of the text is put together on the stack: a stream id is at most 41 bytes.
  const size_t n = rest_.size() + stream_id.size();
  unsigned char text[64];
  if (n > sizeof(text)) {
    std::string longer = absl::StrCat(rest_, stream_id);
    return WriteBase64(reinterpret_cast<const unsigned char*>(longer.data()), n, out);
  }
  std::memcpy(text, rest_.data(), rest_.size());
  std::memcpy(text + rest_.size(), stream_id.data(), stream_id.size());
  return WriteBase64(text, n, out);
}

std::string EncodeCursor(absl::string_view customer_id, absl::string_view stream_id) {
  std::string text = absl::StrCat(kCursorVersion, customer_id, "|", stream_id);
  std::string out(Base64Size(text.size()), '\0');
  WriteBase64(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

absl::StatusOr<std::pair<std::string, std::string>> DecodeAnyCursor(absl::string_view field,
                                                                    absl::string_view cursor) {
  std::string raw;
  if (cursor.size() > 512 || !absl::WebSafeBase64Unescape(cursor, &raw)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": malformed cursor"));
  }
  std::vector<std::string> parts = absl::StrSplit(raw, '|');
  if (parts.size() != 3 || parts[0] != "c1" || !IsStreamId(parts[2])) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": malformed cursor"));
  }
  return std::make_pair(parts[1], parts[2]);
}

absl::StatusOr<std::string> DecodeCursor(absl::string_view field, absl::string_view cursor,
                                         absl::string_view customer_id) {
  auto decoded = DecodeAnyCursor(field, cursor);
  if (!decoded.ok()) return decoded.status();
  if (decoded->first != customer_id) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": the cursor belongs to another customer"));
  }
  return decoded->second;
}

std::string EncodePageToken(const PageToken& t) {
  return absl::WebSafeBase64Escape(absl::StrCat("p1|", t.customer_id, "|",
                                                t.oldest_first ? "asc" : "desc", "|", t.stream_id,
                                                "|", t.filter_fingerprint));
}

absl::StatusOr<PageToken> DecodePageToken(absl::string_view token, const PageToken& expected) {
  std::string raw;
  if (token.size() > 512 || !absl::WebSafeBase64Unescape(token, &raw)) {
    return absl::InvalidArgumentError("page_token: malformed");
  }
  std::vector<std::string> parts = absl::StrSplit(raw, '|');
  PageToken t;
  if (parts.size() != 5 || parts[0] != "p1" || (parts[2] != "asc" && parts[2] != "desc") ||
      !IsStreamId(parts[3]) || !absl::SimpleAtoi(parts[4], &t.filter_fingerprint)) {
    return absl::InvalidArgumentError("page_token: malformed");
  }
  t.customer_id = parts[1];
  t.oldest_first = parts[2] == "asc";
  t.stream_id = parts[3];
  if (t.customer_id != expected.customer_id) {
    return absl::InvalidArgumentError("page_token: belongs to another customer");
  }
  if (t.oldest_first != expected.oldest_first ||
      t.filter_fingerprint != expected.filter_fingerprint) {
    return absl::InvalidArgumentError(
        "page_token: was issued for another order or other filters; start without a token");
  }
  return t;
}

}  // namespace onestory::timeline
