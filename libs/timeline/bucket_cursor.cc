#include "libs/timeline/bucket_cursor.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/timeline/cursor.h"

namespace onestory::timeline {
namespace {

constexpr uint64_t kMaxSeq = std::numeric_limits<uint64_t>::max();
// Sixteen positions of 20-digit parts would fit in about 900 characters of base64.
constexpr size_t kMaxCursorSize = 1024;

// Callers pass stream ids Redis returned or a cursor validated: a malformed one reads as 0-0.
StreamId Parse(absl::string_view id) {
  StreamId s;
  if (!ParseStreamId(id, &s)) return {};
  return s;
}

std::string Format(uint64_t ms, uint64_t seq) { return absl::StrCat(ms, "-", seq); }

// The merged order: (ms, bucket, seq).
struct Key {
  uint64_t ms;
  int bucket;
  uint64_t seq;
  bool operator<(const Key& o) const {
    return std::tie(ms, bucket, seq) < std::tie(o.ms, o.bucket, o.seq);
  }
};

Key KeyOf(int bucket, absl::string_view id) {
  StreamId s = Parse(id);
  return Key{s.ms, bucket, s.seq};
}

bool Less(absl::string_view a, absl::string_view b) { return Parse(a) < Parse(b); }

struct Candidate {
  Key key;
  int bucket;
  size_t index;
};

std::vector<Candidate> Candidates(const std::vector<BucketRead>& reads) {
  std::vector<Candidate> out;
  for (size_t b = 0; b < reads.size(); ++b) {
    for (size_t i = 0; i < reads[b].ids.size(); ++i) {
      out.push_back(Candidate{KeyOf(static_cast<int>(b), reads[b].ids[i]), static_cast<int>(b), i});
    }
  }
  return out;
}

// The last entry a bucket with more examined: the frontier of what is known of it.
std::string LastExamined(const BucketRead& r) {
  if (!r.last.empty()) return r.last;
  return r.ids.empty() ? std::string() : r.ids.back();
}

// Newest first: the position in `bucket` before which lie exactly the entries ordered before
// `cut` in the merged order.
std::string PositionBefore(const Key& cut, int bucket) {
  if (bucket == cut.bucket) return Format(cut.ms, cut.seq);
  if (bucket < cut.bucket) return Format(cut.ms + 1, 0);  // its entries of cut.ms come before
  return Format(cut.ms, 0);
}

bool ParseDigits(absl::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(s, out);
}

}  // namespace

std::string EncodeBucketCursor(absl::string_view owner, const BucketPositions& positions) {
  std::optional<uint64_t> base;
  for (const std::string& p : positions) {
    if (!p.empty()) base = std::min(base.value_or(kMaxSeq), Parse(p).ms);
  }
  std::vector<std::string> parts;
  for (const std::string& p : positions) {
    if (p.empty()) {
      parts.emplace_back();
      continue;
    }
    StreamId s = Parse(p);
    parts.push_back(absl::StrCat(s.ms - *base, "-", s.seq == kMaxSeq ? "x" : absl::StrCat(s.seq)));
  }
  return absl::WebSafeBase64Escape(
      absl::StrCat("b1|", owner, "|", base.value_or(0), "|", absl::StrJoin(parts, ",")));
}

absl::StatusOr<BucketPositions> DecodeBucketCursor(absl::string_view field,
                                                   absl::string_view cursor,
                                                   absl::string_view owner) {
  const absl::Status malformed = absl::InvalidArgumentError(absl::StrCat(field, ": malformed"));
  std::string raw;
  if (cursor.size() > kMaxCursorSize || !absl::WebSafeBase64Unescape(cursor, &raw)) {
    return malformed;
  }
  if (absl::StartsWith(raw, "c1|")) {
    // Issued before buckets, for the one stream the buckets' entries were moved from with their
    // stream ids (libs/engagement/alert_upgrade.h).
    absl::StatusOr<std::string> id = DecodeCursor(field, cursor, owner);
    if (!id.ok()) return id.status();
    return SamePositions(*id);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(raw, '|');
  if (parts.size() != 4 || parts[0] != "b1") return malformed;
  if (parts[1] != owner) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": issued for another tenant, query or customer"));
  }
  uint64_t base = 0;
  if (!ParseDigits(parts[2], &base)) return malformed;
  std::vector<absl::string_view> entries = absl::StrSplit(parts[3], ',');
  if (entries.size() != static_cast<size_t>(keys::kTenantBuckets)) return malformed;
  BucketPositions out;
  for (size_t b = 0; b < entries.size(); ++b) {
    if (entries[b].empty()) continue;
    std::pair<absl::string_view, absl::string_view> p =
        absl::StrSplit(entries[b], absl::MaxSplits('-', 1));
    uint64_t delta = 0, seq = kMaxSeq;
    if (!ParseDigits(p.first, &delta) || delta > kMaxSeq - base) return malformed;
    if (p.second != "x" && !ParseDigits(p.second, &seq)) return malformed;
    out[b] = Format(base + delta, seq);
  }
  return out;
}

MergedPage MergeNewestFirst(const std::vector<BucketRead>& reads, const BucketPositions& from,
                            size_t page_size) {
  std::vector<Candidate> all = Candidates(reads);
  std::sort(all.begin(), all.end(),
            [](const Candidate& a, const Candidate& b) { return b.key < a.key; });
  // Entries ordered before the newest of the buckets' frontiers may have unexamined entries of
  // that bucket ahead of them: not picked yet.
  std::optional<Key> frontier;
  for (size_t b = 0; b < reads.size(); ++b) {
    if (!reads[b].more) continue;
    Key f = KeyOf(static_cast<int>(b), LastExamined(reads[b]));
    if (!frontier || *frontier < f) frontier = f;
  }
  MergedPage page;
  for (const Candidate& c : all) {
    if (page.picked.size() >= page_size || (frontier && c.key < *frontier)) break;
    page.picked.emplace_back(c.bucket, c.index);
  }
  std::optional<Key> cut;
  if (page.picked.size() >= page_size && !page.picked.empty()) {
    const auto& [b, i] = page.picked.back();
    cut = KeyOf(b, reads[b].ids[i]);
    page.more = page.picked.size() < all.size() || frontier.has_value();
  } else if (frontier) {
    cut = frontier;
    page.more = true;
  }
  if (!cut) return page;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    std::string before = PositionBefore(*cut, b);
    page.next[b] = from[b].empty() || Less(before, from[b]) ? before : from[b];
  }
  return page;
}

MergedPage MergeOldestFirst(const std::vector<BucketRead>& reads, const BucketPositions& from) {
  std::vector<Candidate> all = Candidates(reads);
  std::sort(all.begin(), all.end(),
            [](const Candidate& a, const Candidate& b) { return a.key < b.key; });
  std::optional<Key> frontier;
  for (size_t b = 0; b < reads.size(); ++b) {
    if (!reads[b].more) continue;
    Key f = KeyOf(static_cast<int>(b), LastExamined(reads[b]));
    if (!frontier || f < *frontier) frontier = f;
  }
  MergedPage page;
  page.next = from;
  for (const Candidate& c : all) {
    if (frontier && *frontier < c.key) break;
    page.picked.emplace_back(c.bucket, c.index);
    page.next[c.bucket] = reads[c.bucket].ids[c.index];
  }
  page.more = page.picked.size() < all.size() || frontier.has_value();
  return page;
}

BucketPositions PositionsAfter(int bucket, absl::string_view stream_id) {
  StreamId s = Parse(stream_id);
  BucketPositions out;
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    if (b == bucket) {
      out[b] = std::string(stream_id);
    } else if (b < bucket) {
      out[b] = Format(s.ms, kMaxSeq);  // its entries of the same ms come before
    } else {
      out[b] = s.ms == 0 ? "0-0" : Format(s.ms - 1, kMaxSeq);
    }
  }
  return out;
}

BucketPositions SamePositions(absl::string_view stream_id) {
  BucketPositions out;
  out.fill(std::string(stream_id));
  return out;
}

}  // namespace onestory::timeline
