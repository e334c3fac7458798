// Event cursors and List page tokens (libs/timeline/cursor.h) from arbitrary bytes.
//
// The input is decoded as a cursor and as a page token: decoding never crashes, fails only with
// INVALID_ARGUMENT, and whatever decodes encodes back to a token that decodes to the same value
// and is refused for another customer, order or filter. The same bytes also drive the encoders:
// a customer id without '|' and any stream id round-trip, and the tokens are URL-safe.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "libs/timeline/cursor.h"
#include "tests/fuzz/fuzz_check.h"

namespace onestory::timeline {
namespace {

bool IsUrlSafe(absl::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool SamePageToken(const PageToken& a, const PageToken& b) {
  return a.customer_id == b.customer_id && a.oldest_first == b.oldest_first &&
         a.stream_id == b.stream_id && a.filter_fingerprint == b.filter_fingerprint;
}

void CheckDecodeCursor(absl::string_view input) {
  auto any = DecodeAnyCursor("after_cursor", input);
  if (!any.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(any.status()));
    FUZZ_CHECK(absl::IsInvalidArgument(DecodeCursor("after_cursor", input, "cus_1").status()));
    return;
  }
  const auto& [customer, stream_id] = *any;
  FUZZ_CHECK(IsStreamId(stream_id));
  FUZZ_CHECK(customer.find('|') == std::string::npos);
  auto own = DecodeCursor("after_cursor", input, customer);
  FUZZ_CHECK(own.ok() && *own == stream_id);
  FUZZ_CHECK(absl::IsInvalidArgument(DecodeCursor("after_cursor", input, customer + "x").status()));
  std::string again = EncodeCursor(customer, stream_id);
  FUZZ_CHECK(IsUrlSafe(again));
  auto redecoded = DecodeAnyCursor("after_cursor", again);
  FUZZ_CHECK(redecoded.ok() && *redecoded == *any);
}

void CheckDecodePageToken(absl::string_view input) {
  // The token's own customer, order and fingerprint, read plainly, so that the decoder's success
  // path is reached: a decoder that accepted other tokens, or refused these, fails the check.
  PageToken expected;
  bool well_formed = false;
  std::string raw;
  if (input.size() <= 512 && absl::WebSafeBase64Unescape(input, &raw)) {
    std::vector<std::string> parts = absl::StrSplit(raw, '|');
    if (parts.size() == 5) {
      expected.customer_id = parts[1];
      expected.oldest_first = parts[2] == "asc";
      bool fingerprint = absl::SimpleAtoi(parts[4], &expected.filter_fingerprint);
      well_formed = parts[0] == "p1" && (parts[2] == "asc" || parts[2] == "desc") &&
                    IsStreamId(parts[3]) && fingerprint;
    }
  }
  auto token = DecodePageToken(input, expected);
  FUZZ_CHECK(token.ok() == well_formed);
  if (!token.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(token.status()));
    FUZZ_CHECK(absl::StartsWith(token.status().message(), "page_token: "));
    return;
  }
  FUZZ_CHECK(IsStreamId(token->stream_id));
  PageToken other_customer = expected;
  other_customer.customer_id += "x";
  FUZZ_CHECK(!DecodePageToken(input, other_customer).ok());
  PageToken other_order = expected;
  other_order.oldest_first = !other_order.oldest_first;
  FUZZ_CHECK(!DecodePageToken(input, other_order).ok());
  PageToken other_filter = expected;
  other_filter.filter_fingerprint ^= 1;
  FUZZ_CHECK(!DecodePageToken(input, other_filter).ok());
  std::string again = EncodePageToken(*token);
  FUZZ_CHECK(IsUrlSafe(again));
  auto redecoded = DecodePageToken(again, expected);
  FUZZ_CHECK(redecoded.ok() && SamePageToken(*redecoded, *token));
}

void CheckEncoders(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  uint64_t ms = in.ConsumeIntegral<uint64_t>();
  uint64_t seq = in.ConsumeIntegral<uint64_t>();
  bool oldest_first = in.ConsumeBool();
  uint64_t fingerprint = in.ConsumeIntegral<uint64_t>();
  // Validated customer ids, and the alert log's "alerts:<tenant>[:open|:all]", are at most ~80
  // bytes; 128 keeps every token under the decoders' 512-character limit.
  std::string customer = in.ConsumeRandomLengthString(128);
  std::string stream_id = absl::StrCat(ms, "-", seq);
  FUZZ_CHECK(IsStreamId(stream_id));
  FUZZ_CHECK(StreamIdMillis(stream_id) ==
             (ms <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                  ? static_cast<int64_t>(ms)
                  : 0));
  bool separable = customer.find('|') == std::string::npos;

  std::string cursor = EncodeCursor(customer, stream_id);
  FUZZ_CHECK(IsUrlSafe(cursor));
  // Written in place by a customer's CursorWriter: the same bytes, also for any stream id.
  CursorWriter writer(customer);
  for (const std::string& id : {stream_id, in.ConsumeRandomLengthString(300)}) {
    std::string written(writer.Size(id), '\0');
    FUZZ_CHECK(writer.Write(id, written.data()) == written.data() + written.size());
    FUZZ_CHECK(written == EncodeCursor(customer, id));
  }
  auto decoded = DecodeCursor("after_cursor", cursor, customer);
  FUZZ_CHECK(decoded.ok() == separable);
  if (separable) FUZZ_CHECK(*decoded == stream_id);

  PageToken token{customer, oldest_first, stream_id, fingerprint};
  std::string encoded = EncodePageToken(token);
  FUZZ_CHECK(IsUrlSafe(encoded));
  auto page = DecodePageToken(encoded, token);
  FUZZ_CHECK(page.ok() == separable);
  if (separable) FUZZ_CHECK(SamePageToken(*page, token));
}

}  // namespace
}  // namespace onestory::timeline

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  onestory::timeline::CheckDecodeCursor(input);
  onestory::timeline::CheckDecodePageToken(input);
  onestory::timeline::CheckEncoders(data, size);
  return 0;
}
