#include "libs/timeline/bucket_cursor.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "libs/timeline/cursor.h"

namespace onestory::timeline {
namespace {

constexpr int kBuckets = keys::kTenantBuckets;

TEST(BucketCursorTest, RoundTripsEveryPositionAndStaysShort) {
  BucketPositions p;
  p[0] = "1733427949000-0";
  p[3] = "1733427949123-7";
  p[15] = "1733427950000-18446744073709551615";
  std::string c = EncodeBucketCursor("alerts:acme", p);
  absl::StatusOr<BucketPositions> back = DecodeBucketCursor("after_cursor", c, "alerts:acme");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  // Every bucket set, a second apart: well under a kilobyte.
  for (int b = 0; b < kBuckets; ++b) p[b] = absl::StrCat(1733427949000 + b * 1000, "-", b);
  c = EncodeBucketCursor("alerts:acme", p);
  EXPECT_LT(c.size(), 200u) << c;
  back = DecodeBucketCursor("after_cursor", c, "alerts:acme");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  // None set.
  back = DecodeBucketCursor("f", EncodeBucketCursor("o", BucketPositions{}), "o");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, BucketPositions{});
}

TEST(BucketCursorTest, RefusesMalformedCursorsAndOtherOwnersNamingTheField) {
  BucketPositions p;
  p[2] = "5-1";
  std::string c = EncodeBucketCursor("alerts:acme:open", p);
  absl::StatusOr<BucketPositions> r = DecodeBucketCursor("page_token", c, "alerts:acme:all");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "page_token: ")) << r.status();
  for (std::string raw :
       {"b1|o|0|", "b1|o|x|,,,,,,,,,,,,,,,", "b1|o|0|1-1,,,,,,,,,,,,,,", "b2|o|0|,,,,,,,,,,,,,,,",
        "b1|o|0|1-y,,,,,,,,,,,,,,,", "b1|o|18446744073709551615|1-0,,,,,,,,,,,,,,,",
        "b1|o|0|-1,,,,,,,,,,,,,,,", "b1|o|0|1,,,,,,,,,,,,,,,"}) {
    r = DecodeBucketCursor("after_cursor", absl::WebSafeBase64Escape(raw), "o");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << raw;
    EXPECT_TRUE(absl::StartsWith(r.status().message(), "after_cursor: ")) << raw;
  }
  r = DecodeBucketCursor("after_cursor", "not base64 !", "o");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = DecodeBucketCursor("after_cursor", std::string(2000, 'A'), "o");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BucketCursorTest, AOneStreamCursorOfTheSameOwnerIsThatIdInEveryBucket) {
  absl::StatusOr<BucketPositions> r =
      DecodeBucketCursor("after_cursor", EncodeCursor("alerts:acme", "17-3"), "alerts:acme");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, SamePositions("17-3"));
  r = DecodeBucketCursor("after_cursor", EncodeCursor("alerts:other", "17-3"), "alerts:acme");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

// A model of the buckets' streams and of the functions' reads (engagement_alert_list /
// audit_list: newest first, a filter, a cap on entries examined; engagement_alert_read:
// oldest first, a count).
struct Entry {
  uint64_t ms, seq;
  bool match;
};
using Stream = std::vector<Entry>;  // ascending

std::string Id(const Entry& e) { return absl::StrCat(e.ms, "-", e.seq); }
std::pair<uint64_t, uint64_t> Parse(const std::string& id) {
  std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(id, '-');
  uint64_t ms = 0, seq = 0;
  EXPECT_TRUE(absl::SimpleAtoi(p.first, &ms) && absl::SimpleAtoi(p.second, &seq)) << id;
  return {ms, seq};
}

BucketRead ReadNewest(const Stream& s, const std::string& before, size_t page, size_t cap) {
  BucketRead r;
  size_t examined = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (!before.empty() && std::make_pair(it->ms, it->seq) >= Parse(before)) continue;
    if (r.ids.size() >= page || examined >= cap) {
      r.more = true;
      break;
    }
    ++examined;
    r.last = Id(*it);
    if (it->match) r.ids.push_back(Id(*it));
  }
  return r;
}

BucketRead ReadOldest(const Stream& s, const std::string& after, size_t count) {
  BucketRead r;
  for (const Entry& e : s) {
    if (!after.empty() && std::make_pair(e.ms, e.seq) <= Parse(after)) continue;
    if (r.ids.size() >= count) break;
    r.ids.push_back(Id(e));
  }
  r.more = r.ids.size() >= count;
  return r;
}

std::vector<Stream> RandomBuckets(std::mt19937* rng, int n, uint64_t ms_from, uint64_t ms_span) {
  std::vector<Stream> buckets(kBuckets);
  std::uniform_int_distribution<int> bucket(0, kBuckets - 1);
  std::uniform_int_distribution<uint64_t> ms(ms_from, ms_from + ms_span);
  std::bernoulli_distribution match(0.3);
  for (int i = 0; i < n; ++i) buckets[bucket(*rng)].push_back(Entry{ms(*rng), 0, match(*rng)});
  for (Stream& s : buckets) {
    std::sort(s.begin(), s.end(), [](const Entry& a, const Entry& b) { return a.ms < b.ms; });
    for (size_t i = 1; i < s.size(); ++i) {  // one stream never repeats an id
      if (s[i].ms == s[i - 1].ms) s[i].seq = s[i - 1].seq + 1;
    }
  }
  return buckets;
}

// The merged order, newest first: (ms, bucket, seq) descending.
std::vector<std::tuple<uint64_t, int, uint64_t>> Expected(const std::vector<Stream>& buckets,
                                                          bool matching_only) {
  std::vector<std::tuple<uint64_t, int, uint64_t>> out;
  for (int b = 0; b < kBuckets; ++b) {
    for (const Entry& e : buckets[b]) {
      if (!matching_only || e.match) out.emplace_back(e.ms, b, e.seq);
    }
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

TEST(BucketCursorTest, NewestFirstPagesGiveEveryMatchingEntryOnceInMergedOrder) {
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    // Many entries in the same few ms, so ties between buckets are common.
    std::vector<Stream> buckets = RandomBuckets(&rng, 300, 1000, round % 2 ? 20 : 5000);
    const size_t page_size = 1 + round % 7;
    const size_t cap = 3 + round % 11;  // entries one read examines at most
    std::vector<std::tuple<uint64_t, int, uint64_t>> got;
    BucketPositions from;
    for (int pages = 0; pages < 2000; ++pages) {
      // Each page's token goes through its text form, as a client holds it.
      std::vector<BucketRead> reads;
      for (int b = 0; b < kBuckets; ++b) {
        reads.push_back(ReadNewest(buckets[b], from[b], page_size, cap));
      }
      MergedPage page = MergeNewestFirst(reads, from, page_size);
      EXPECT_LE(page.picked.size(), page_size);
      for (auto [b, i] : page.picked) {
        auto [ms, seq] = Parse(reads[b].ids[i]);
        got.emplace_back(ms, b, seq);
      }
      if (!page.more) break;
      absl::StatusOr<BucketPositions> next =
          DecodeBucketCursor("page_token", EncodeBucketCursor("o", page.next), "o");
      ASSERT_TRUE(next.ok()) << next.status();
      from = *next;
    }
    ASSERT_EQ(got, Expected(buckets, true)) << "round " << round;
  }
}

TEST(BucketCursorTest, OldestFirstReadsGiveEveryEntryOnceEvenWhenOneArrivesLate) {
  std::mt19937 rng(11);
  std::vector<Stream> buckets = RandomBuckets(&rng, 400, 1000, 50);
  std::vector<std::tuple<uint64_t, int, uint64_t>> got;
  BucketPositions at;
  auto drain = [&] {
    for (int reads_left = 1000; reads_left > 0; --reads_left) {
      std::vector<BucketRead> reads;
      for (int b = 0; b < kBuckets; ++b) reads.push_back(ReadOldest(buckets[b], at[b], 4));
      MergedPage page = MergeOldestFirst(reads, at);
      // In merged order within a read.
      for (size_t k = 0; k < page.picked.size(); ++k) {
        auto [b, i] = page.picked[k];
        auto [ms, seq] = Parse(reads[b].ids[i]);
        if (k > 0) {
          EXPECT_LT(got.back(), std::make_tuple(ms, b, seq));
        }
        got.emplace_back(ms, b, seq);
      }
      at = page.next;
      if (!page.more) return;
    }
    ADD_FAILURE() << "no end";
  };
  drain();
  // Nothing arrived late: exactly the merged order, across reads too.
  std::vector<std::tuple<uint64_t, int, uint64_t>> first = Expected(buckets, false);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(got, first);
  // An entry reaches bucket 0 late, older (by the clock) than entries already read from other
  // buckets, but newer than bucket 0's own: read once, by the next read.
  buckets[0].push_back(Entry{buckets[0].back().ms + 1, 0, true});
  buckets[5].push_back(Entry{buckets[5].empty() ? 5000 : buckets[5].back().ms + 4000, 0, true});
  drain();
  std::vector<std::tuple<uint64_t, int, uint64_t>> all = Expected(buckets, false);
  std::sort(all.begin(), all.end());
  std::vector<std::tuple<uint64_t, int, uint64_t>> sorted = got;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, all);
  EXPECT_EQ(got.size(), 402u);
}

TEST(BucketCursorTest, PositionsAfterAListedEntryResumeJustAfterItInMergedOrder) {
  std::mt19937 rng(3);
  std::vector<Stream> buckets = RandomBuckets(&rng, 200, 1000, 30);
  std::vector<std::tuple<uint64_t, int, uint64_t>> order = Expected(buckets, false);
  std::sort(order.begin(), order.end());
  for (size_t k = 0; k < order.size(); k += 17) {
    auto [ms, b, seq] = order[k];
    BucketPositions at = PositionsAfter(b, absl::StrCat(ms, "-", seq));
    std::vector<std::tuple<uint64_t, int, uint64_t>> rest;
    for (int i = 0; i < kBuckets; ++i) {
      for (const std::string& id : ReadOldest(buckets[i], at[i], 1000).ids) {
        auto [m, s] = Parse(id);
        rest.emplace_back(m, i, s);
      }
    }
    std::sort(rest.begin(), rest.end());
    std::vector<std::tuple<uint64_t, int, uint64_t>> expected(order.begin() + k + 1, order.end());
    EXPECT_EQ(rest, expected);
  }
}

}  // namespace
}  // namespace onestory::timeline
