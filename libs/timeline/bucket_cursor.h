// Positions in a tenant's streams spread over keys::kTenantBuckets buckets (the alert log, the
// audit log): one stream id per bucket, and the merge of the buckets' reads into one order.
//
//   BucketPositions from = ...;                    // DecodeBucketCursor(...) or NoPositions()
//   std::vector<BucketRead> reads(kTenantBuckets); // each bucket read from from[b], one call each
//   MergedPage page = MergeNewestFirst(reads, from, page_size);
//   for (auto [bucket, i] : page.picked) ...       // entries in merged order
//   if (page.more) token = EncodeBucketCursor(owner, page.next);
//
// The merged order is the order key (ms of the stream id, bucket, stream id): a total order,
// the same on every instance, that follows each bucket's own stream order. Because each bucket
// has its own position, an entry that reaches its bucket late (an outbox applied after a sweep,
// another primary's clock) is still read exactly once by a cursor that already passed later
// entries of other buckets.
//
// A cursor is URL-safe base64 of "b1|<owner>|<base ms>|<p0>,...,<p15>": each position is empty
// (none) or "<ms - base>-<seq>" ("x" for the largest seq), so a cursor stays short when the
// positions are close in time. A cursor of one stream (EncodeCursor in cursor.h, as versions
// before buckets issued them) decodes to that stream id in every bucket. Thread-safe (pure).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/keys/key_schema.h"

namespace onestory::timeline {

// Per bucket a stream id, or empty for none: for a newest-first read, the entries before it are
// still to come (none: from the newest); for an oldest-first read, those after it (none: from
// the oldest).
using BucketPositions = std::array<std::string, keys::kTenantBuckets>;

std::string EncodeBucketCursor(absl::string_view owner, const BucketPositions& positions);
// The positions of a cursor issued for `owner`; INVALID_ARGUMENT naming `field` for a malformed
// cursor or one of another owner.
absl::StatusOr<BucketPositions> DecodeBucketCursor(absl::string_view field,
                                                   absl::string_view cursor,
                                                   absl::string_view owner);

// What one bucket's read returned.
struct BucketRead {
  std::vector<std::string> ids;  // stream ids of the entries it returned, in its read order
  bool more = false;             // it stopped before the end of its range
  std::string last;              // with more: the last stream id it examined (returned or not)
};

struct MergedPage {
  std::vector<std::pair<int, size_t>> picked;  // (bucket, index in its read's ids), in order
  bool more = false;                           // entries may follow `next`
  BucketPositions next;                        // where the following read starts
};

// Newest first, up to page_size entries: only entries no bucket still has to examine something
// newer than are picked, so the page is exactly the next page_size entries of the merged order.
// `reads` has one element per bucket (a bucket not read: empty, more false); `from` is where
// they started.
MergedPage MergeNewestFirst(const std::vector<BucketRead>& reads, const BucketPositions& from,
                            size_t page_size);

// Oldest first: every entry up to the first one a bucket with more has not reached; `next`
// holds each bucket's last picked stream id.
MergedPage MergeOldestFirst(const std::vector<BucketRead>& reads, const BucketPositions& from);

// The oldest-first positions just after the entry `stream_id` of `bucket` in the merged order
// (every entry ordered before it or at it is behind): the Watch cursor of a listed entry.
BucketPositions PositionsAfter(int bucket, absl::string_view stream_id);

// Every position the same stream id (a cursor of the single stream before buckets).
BucketPositions SamePositions(absl::string_view stream_id);

}  // namespace onestory::timeline
