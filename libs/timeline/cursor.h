// Opaque positions in a customer's timeline: event cursors (Watch) and List page tokens.
//
// Both are URL-safe base64 of a small versioned text that names the customer and a Redis stream
// id; a page token also carries the list order and a fingerprint of its filters. Decoding
// checks all of it, so a token from another customer, order or filter is INVALID_ARGUMENT
// rather than a silently wrong page. Tokens are not secret: they only name positions the
// holder could read anyway. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace onestory::timeline {

std::string EncodeCursor(absl::string_view customer_id, absl::string_view stream_id);

// Writes the cursors of one customer's events in place, the customer's share of the text
// encoded once: GetContext writes twenty or more per call. Thread-compatible.
//
//   CursorWriter cursors("cus_1");
//   char* end = cursors.Write("1700000000000-0", out);  // cursors.Size(...) bytes at out
class CursorWriter {
 public:
  explicit CursorWriter(absl::string_view customer_id);

  const std::string& customer_id() const { return customer_id_; }
  // EncodeCursor(customer_id(), stream_id).size().
  size_t Size(absl::string_view stream_id) const;
  // Writes EncodeCursor(customer_id(), stream_id) at `out`; returns its end.
  char* Write(absl::string_view stream_id, char* out) const;

 private:
  std::string customer_id_;
  std::string head_;  // base64 of "c1|<customer_id>|" up to its last whole three bytes
  std::string rest_;  // the zero to two bytes after them
};
// The stream id in a cursor of customer_id; INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> DecodeCursor(absl::string_view field, absl::string_view cursor,
                                         absl::string_view customer_id);

// The customer a cursor names and its stream id, whoever the customer is; INVALID_ARGUMENT
// naming `field` for a malformed cursor.
absl::StatusOr<std::pair<std::string, std::string>> DecodeAnyCursor(absl::string_view field,
                                                                    absl::string_view cursor);

struct PageToken {
  std::string customer_id;
  bool oldest_first = false;
  std::string stream_id;  // the last entry examined; the next page starts after it
  uint64_t filter_fingerprint = 0;
};
std::string EncodePageToken(const PageToken& token);
// INVALID_ARGUMENT ("page_token: ...") unless it decodes and matches the expected customer,
// order and fingerprint.
absl::StatusOr<PageToken> DecodePageToken(absl::string_view token, const PageToken& expected);

// True for a Redis stream id "<ms>-<seq>".
bool IsStreamId(absl::string_view id);

// A stream id as numbers, for ordering and for making ids between two others.
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  bool operator<(const StreamId& o) const { return std::tie(ms, seq) < std::tie(o.ms, o.seq); }
  std::string str() const;
  StreamId Next() const { return seq == UINT64_MAX ? StreamId{ms + 1, 0} : StreamId{ms, seq + 1}; }
};
// False when `s` is not a stream id (IsStreamId).
bool ParseStreamId(absl::string_view s, StreamId* out);
// The milliseconds part of a stream id (0 when malformed or past int64's range).
int64_t StreamIdMillis(absl::string_view id);

}  // namespace onestory::timeline
