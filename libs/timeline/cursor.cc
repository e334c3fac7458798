#include "libs/timeline/cursor.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace onestory::timeline {

bool IsStreamId(absl::string_view id) {
  // Digits only: SimpleAtoi alone would accept surrounding whitespace or a sign.
  std::vector<absl::string_view> parts = absl::StrSplit(id, '-');
  if (parts.size() != 2) return false;
  for (absl::string_view part : parts) {
    if (part.empty() || part.size() > 20) return false;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
    }
    uint64_t value;
    if (!absl::SimpleAtoi(part, &value)) return false;  // out of range
  }
  return true;
}

int64_t StreamIdMillis(absl::string_view id) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(id.substr(0, id.find('-')), &ms)) return 0;
  return ms;
}

std::string EncodeCursor(absl::string_view customer_id, absl::string_view stream_id) {
  return absl::WebSafeBase64Escape(absl::StrCat("c1|", customer_id, "|", stream_id));
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
