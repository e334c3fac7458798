// retention_sweep and retention_forget (libs/retention/lua/) called directly on hand-built keys:
// trimming by count (with its slack) and by age (a merge's 'a' time first), the cap per call,
// the dedup entries of trimmed events, the states of merged, held and unknown customers, and
// forgetting only customers that did not append since.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/retention_forget.h"
#include "libs/lua/retention_sweep.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

// retention_sweep's answer: {state, events removed}.
using Answer = std::pair<int64_t, int64_t>;

class RetentionFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  // A stored event as os_trim reads it: field 1 (event_id) first in the serialized bytes.
  static std::string Blob(const std::string& event_id) {
    return absl::StrCat(std::string(1, '\x0a'), std::string(1, static_cast<char>(event_id.size())),
                        event_id, std::string("\x12\x01x", 3));
  }
  // Stores event `event_id` at stream id `sid` (and its dedup entry); `a`: a merge's time.
  void Store(const std::string& sid, const std::string& event_id, const std::string& a = "") {
    if (a.empty()) {
      Run({"XADD", ck_.timeline(), sid, "e", Blob(event_id)});
    } else {
      Run({"XADD", ck_.timeline(), sid, "e", Blob(event_id), "a", a});
    }
    Run({"HSET", ck_.dedup(), event_id, sid});
  }
  RetentionSweep Sweep(int64_t now, int64_t max_age, int64_t max_events, int64_t limit) {
    RetentionSweep call;
    call.profile = ck_.profile();
    call.timeline = ck_.timeline();
    call.dedup = ck_.dedup();
    call.now_ms = now;
    call.max_age = max_age;
    call.max_events = max_events;
    call.limit = limit;
    return call;
  }
  Answer RunSweep(const RetentionSweep& call) {
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->elements.size() != 2) return {-1, -1};
    return {r->elements[0].integer, r->elements[1].integer};
  }
  int64_t Len() { return Run({"XLEN", ck_.timeline()}).integer; }

  const keys::CustomerKeys ck_{"acme", "cus_1"};
};

TEST_F(RetentionFunctionsTest, TrimsPastMaxEventsOldestFirstWithTheirDedupEntries) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  for (int i = 1; i <= 150; ++i) Store(absl::StrCat(i, "-0"), absl::StrCat("ev_", i));
  // max_events 100: slack min(100, 100 / 100) = 1, so 150 > 101 is cut to exactly 100.
  EXPECT_EQ(RunSweep(Sweep(1000, 0, 100, 1000)), Answer(0, 50));
  EXPECT_EQ(Len(), 100);
  EXPECT_EQ(Run({"XRANGE", ck_.timeline(), "-", "+", "COUNT", "1"}).elements[0].elements[0].str,
            "51-0");
  EXPECT_EQ(Run({"HLEN", ck_.dedup()}).integer, 100);
  EXPECT_EQ(Run({"HEXISTS", ck_.dedup(), "ev_50"}).integer, 0);
  EXPECT_EQ(Run({"HEXISTS", ck_.dedup(), "ev_51"}).integer, 1);
}

TEST_F(RetentionFunctionsTest, KeepsATimelineWithinTheSlack) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  for (int i = 1; i <= 101; ++i) Store(absl::StrCat(i, "-0"), absl::StrCat("ev_", i));
  EXPECT_EQ(RunSweep(Sweep(1000, 0, 100, 1000)), Answer(0, 0));
  EXPECT_EQ(Len(), 101);
}

TEST_F(RetentionFunctionsTest, RemovesAtMostLimitInOneCall) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  for (int i = 1; i <= 300; ++i) Store(absl::StrCat(i, "-0"), absl::StrCat("ev_", i));
  EXPECT_EQ(RunSweep(Sweep(1000, 0, 10, 50)), Answer(0, 50));
  EXPECT_EQ(Len(), 250);
}

TEST_F(RetentionFunctionsTest, TrimsByAgeAndAMergesTimeComesFirst) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  Store("10000-0", "old_1");
  Store("20000-0", "old_2");
  Store("30000-0", "moved", "95000");  // renumbered by a merge: stored at 95000, young
  Store("40000-0", "old_3");           // expired, but waits behind the young one
  Store("99000-0", "young");
  // now 100000, max_age 50000: stored before 50000 expires.
  EXPECT_EQ(RunSweep(Sweep(100000, 50000, 0, 1000)), Answer(0, 2));
  EXPECT_EQ(Len(), 3);
  EXPECT_EQ(Run({"HEXISTS", ck_.dedup(), "old_2"}).integer, 0);
  EXPECT_EQ(Run({"HEXISTS", ck_.dedup(), "moved"}).integer, 1);
  // And the other way round: an old 'a' expires an entry with a young id.
  Run({"DEL", ck_.timeline()});
  Store("90000-0", "merged_old", "1000");
  Store("99000-1", "young_2");
  EXPECT_EQ(RunSweep(Sweep(100000, 50000, 0, 1000)), Answer(0, 1));
  EXPECT_EQ(Len(), 1);
}

TEST_F(RetentionFunctionsTest, LooksOnlyWithNoLimits) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  Store("1-0", "ev_1");
  EXPECT_EQ(RunSweep(Sweep(100000, 0, 0, 1000)), Answer(0, 0));
  EXPECT_EQ(Len(), 1);
}

TEST_F(RetentionFunctionsTest, LeavesUnknownMergedAndHeldCustomersAlone) {
  for (int i = 1; i <= 5; ++i) Store(absl::StrCat(i, "-0"), absl::StrCat("ev_", i));
  EXPECT_EQ(RunSweep(Sweep(1000, 0, 1, 1000)), Answer(1, 0));
  Run({"HSET", ck_.profile(), "created_at", "1", "merged_into", "cus_2"});
  EXPECT_EQ(RunSweep(Sweep(1000, 0, 1, 1000)), Answer(2, 0));
  Run({"HDEL", ck_.profile(), "merged_into"});
  Run({"HSET", ck_.profile(), "merge_lock", "mg_1"});
  EXPECT_EQ(RunSweep(Sweep(1000, 0, 1, 1000)), Answer(3, 0));
  EXPECT_EQ(Len(), 5);
}

TEST_F(RetentionFunctionsTest, ForgetDropsOnlyCustomersThatDidNotAppendSince) {
  const std::string index = keys::TenantKeys("acme").activity();
  Run({"ZADD", index, "100", "cus_a", "200", "cus_b", "300", "cus_c"});
  RetentionForget call;
  call.index = index;
  // cus_b appended (200) after the Sweeper saw it (150); cus_x is not there.
  call.members = {"cus_a", "100", "cus_b", "150", "cus_x", "1"};
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"ZCARD", index}).integer, 2);
  EXPECT_TRUE(Run({"ZSCORE", index, "cus_a"}).is_nil());
  // No pairs at all: nothing to do.
  call.members.clear();
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
}

}  // namespace
}  // namespace onestory::lua
