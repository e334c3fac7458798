// The functions of libs/outbox/lua/ called directly on hand-built keys: outbox_alerts raising an
// alert id once however often it is applied (published once, opened at the time it was raised);
// outbox_journey counting each outbox entry once across replays, per customer, and forgetting
// old marks a few per call; outbox_unmark clearing a pending mark only while it is unchanged.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/outbox_alerts.h"
#include "libs/lua/outbox_due.h"
#include "libs/lua/outbox_journey.h"
#include "libs/lua/outbox_unmark.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

constexpr int64_t kNow = 1700000000000;
constexpr int64_t kKept = 7 * 86400000LL;

class OutboxFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  OutboxAlerts Alerts(const std::vector<std::string>& alerts) {
    OutboxAlerts call;
    call.alert_log = ak_.alert_log();
    call.alert_ids = ak_.alert_ids();
    call.alert_open = ak_.alert_open();
    call.customer_id = "cus_1";
    call.alert_channel = ak_.alert_channel();
    call.alerts = alerts;
    return call;
  }
  // Applies `counts` (entry sequence number, counter field, ...) for `customer` at `now`;
  // returns the reply.
  int64_t Count(const std::string& customer, const std::vector<std::string>& counts,
                int64_t now = kNow) {
    std::vector<std::string> entries;
    for (size_t i = 0; i + 1 < counts.size(); i += 2) {
      entries.insert(entries.end(), {counts[i], "n", counts[i + 1], "", ""});
    }
    return Journey(customer, entries, now);
  }
  // Applies journey `entries` (5 values each, as outbox_journey takes them); returns the reply.
  int64_t Journey(const std::string& customer, const std::vector<std::string>& entries,
                  int64_t now = kNow) {
    OutboxJourney call;
    call.journey_counters = tk_.journey_counters();
    call.journey_open = tk_.journey_open();
    call.journey_stays = tk_.journey_stays();
    call.applied = tk_.journey_applied();
    call.applied_at = tk_.journey_applied_at();
    call.customer_id = customer;
    call.now_ms = now;
    call.kept_ms = kKept;
    call.entries = entries;
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->integer : -1;
  }
  // Applies due-promise `entries` (4 values each) of acme's `customer`; returns the reply.
  int64_t Due(const std::string& customer, const std::vector<std::string>& entries) {
    OutboxDue call;
    call.due_promises = keys::DuePromisesKey();
    call.applied = keys::DuePromisesAppliedKey();
    call.applied_at = keys::DuePromisesAppliedAtKey();
    call.owner = "acme|" + customer;
    call.now_ms = kNow;
    call.kept_ms = kKept;
    call.entries = entries;
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->integer : -1;
  }
  std::map<std::string, std::string> Counters() {
    std::map<std::string, std::string> out;
    const auto& all = Run({"HGETALL", tk_.journey_counters()}).elements;
    for (size_t i = 0; i + 1 < all.size(); i += 2) out[all[i].str] = all[i + 1].str;
    return out;
  }

  const keys::TenantKeys tk_{"acme"};
  // The bucket of cus_1's alerts (keys::TenantBucket).
  const keys::TenantKeys ak_{"acme", keys::TenantBucket("cus_1")};
};

TEST_F(OutboxFunctionsTest, AlertsRaiseAnIdOnceHoweverOftenApplied) {
  // A subscriber of the bucket's alert channel (a shard channel) sees each raised alert's
  // stream id.
  redisContext* sub = redisConnect("127.0.0.1", redis_->port());
  ASSERT_TRUE(sub != nullptr && !sub->err);
  freeReplyObject(redisCommand(sub, "SSUBSCRIBE %s", ak_.alert_channel().c_str()));

  const std::vector<std::string> entry = {"repeat_contact:cus_1:case_1", "2", "case_1",
                                          "customer cus_1 contacted us 3 times", "1699999990000"};
  absl::StatusOr<redis::Reply> r = Call(Alerts(entry));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  // Applied again (a retry, another instance's drain), and twice within one call: held already.
  std::vector<std::string> twice = entry;
  twice.insert(twice.end(), entry.begin(), entry.end());
  r = Call(Alerts(twice));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);

  redis::Reply log = Run({"XRANGE", ak_.alert_log(), "-", "+"});
  ASSERT_EQ(log.elements.size(), 1u);
  const std::string sid = log.elements[0].elements[0].str;
  std::vector<std::string> fields;
  for (const redis::Reply& f : log.elements[0].elements[1].elements) fields.push_back(f.str);
  EXPECT_EQ(fields, (std::vector<std::string>{
                        "id", "repeat_contact:cus_1:case_1", "k", "2", "c", "cus_1", "ca", "case_1",
                        "msg", "customer cus_1 contacted us 3 times", "at", "1699999990000"}));
  EXPECT_EQ(Run({"HLEN", ak_.alert_ids()}).integer, 1);
  EXPECT_EQ(Run({"HGET", ak_.alert_ids(), "repeat_contact:cus_1:case_1"}).str, sid);
  // Open since it was raised, not since it was applied.
  EXPECT_EQ(Run({"ZCARD", ak_.alert_open()}).integer, 1);
  EXPECT_EQ(Run({"ZSCORE", ak_.alert_open(), "repeat_contact:cus_1:case_1"}).str, "1699999990000");

  // A new id in the same batch as a held one: only the new one is raised.
  std::vector<std::string> more = entry;
  more.insert(more.end(), {"negative_streak:cus_1:5-0", "3", "", "3 negative", "1699999995000"});
  r = Call(Alerts(more));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 2);
  EXPECT_EQ(Run({"ZSCORE", ak_.alert_open(), "negative_streak:cus_1:5-0"}).str, "1699999995000");
  const std::string sid2 =
      Run({"XREVRANGE", ak_.alert_log(), "+", "-", "COUNT", "1"}).elements[0].elements[0].str;

  // Published: once per raised alert, its stream id.
  struct timeval tv = {0, 300000};
  redisSetTimeout(sub, tv);
  std::vector<std::string> published;
  void* reply = nullptr;
  while (redisGetReply(sub, &reply) == REDIS_OK && reply != nullptr) {
    auto* m = static_cast<redisReply*>(reply);
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
        std::string(m->element[0]->str, m->element[0]->len) == "smessage") {
      published.emplace_back(m->element[2]->str, m->element[2]->len);
    }
    freeReplyObject(m);
    reply = nullptr;
  }
  redisFree(sub);
  EXPECT_EQ(published, (std::vector<std::string>{sid, sid2}));
}

TEST_F(OutboxFunctionsTest, JourneyCountsEachEntryOnceAcrossReplays) {
  const std::vector<std::string> first = {"8",  "ship:entered", "9", "ship:entered",
                                          "10", "done:entered"};
  EXPECT_EQ(Count("cus_1", first), 3);
  EXPECT_EQ(Counters(),
            (std::map<std::string, std::string>{{"done:entered", "1"}, {"ship:entered", "2"}}));
  EXPECT_EQ(Run({"HGET", tk_.journey_applied(), "cus_1"}).str, "10");
  EXPECT_EQ(Run({"ZSCORE", tk_.journey_applied_at(), "cus_1"}).str, absl::StrCat(kNow));

  // The same entries again (a drain that applied them and died before deleting them): nothing.
  EXPECT_EQ(Count("cus_1", first, kNow + 5), 0);
  EXPECT_EQ(Counters(),
            (std::map<std::string, std::string>{{"done:entered", "1"}, {"ship:entered", "2"}}));
  EXPECT_EQ(Run({"ZSCORE", tk_.journey_applied_at(), "cus_1"}).str, absl::StrCat(kNow));

  // A replay of a suffix of them plus new entries: only the new ones count ("10" is after
  // "9" as a stream id, though not as a string; "11" after "10").
  EXPECT_EQ(Count("cus_1",
                  {"9", "ship:entered", "10", "done:entered", "11", "ship:repeats", "100",
                   "done:entered"},
                  kNow + 10),
            2);
  EXPECT_EQ(Counters(), (std::map<std::string, std::string>{
                            {"done:entered", "2"}, {"ship:entered", "2"}, {"ship:repeats", "1"}}));
  EXPECT_EQ(Run({"HGET", tk_.journey_applied(), "cus_1"}).str, "100");
  EXPECT_EQ(Run({"ZSCORE", tk_.journey_applied_at(), "cus_1"}).str, absl::StrCat(kNow + 10));

  // Another customer's entries have their own mark: sequence numbers below cus_1's still count.
  EXPECT_EQ(Count("cus_2", {"1", "ship:entered"}, kNow + 20), 1);
  EXPECT_EQ(Counters()["ship:entered"], "3");
  EXPECT_EQ(Run({"HGET", tk_.journey_applied(), "cus_2"}).str, "1");
  EXPECT_EQ(Run({"HGET", tk_.journey_applied(), "cus_1"}).str, "100");
}

TEST_F(OutboxFunctionsTest, JourneyForgetsOldMarksAFewPerCall) {
  // 20 customers applied long ago, one just inside kept_ms, one exactly at its edge.
  for (int i = 0; i < 20; ++i) {
    std::string c = absl::StrCat("old_", i);
    Run({"HSET", tk_.journey_applied(), c, "5"});
    Run({"ZADD", tk_.journey_applied_at(), absl::StrCat(kNow - kKept - 1000 - i), c});
  }
  Run({"HSET", tk_.journey_applied(), "recent", "5", "edge", "5"});
  Run({"ZADD", tk_.journey_applied_at(), absl::StrCat(kNow - kKept + 1), "recent",
       absl::StrCat(kNow - kKept), "edge"});

  // A call with nothing to count still forgets, 16 marks at most (the oldest first).
  EXPECT_EQ(Count("cus_1", {}), 0);
  EXPECT_EQ(Run({"HLEN", tk_.journey_applied()}).integer, 22 - 16);
  EXPECT_EQ(Run({"ZCARD", tk_.journey_applied_at()}).integer, 22 - 16);
  EXPECT_EQ(Run({"HEXISTS", tk_.journey_applied(), "old_19"}).integer, 0);  // the oldest
  EXPECT_EQ(Run({"HEXISTS", tk_.journey_applied(), "old_0"}).integer, 1);
  // The next call forgets the rest and the mark at the edge; the recent one stays, and so
  // does the mark this call writes.
  EXPECT_EQ(Count("cus_1", {"1", "ship:entered"}), 1);
  std::vector<std::string> left;
  for (const redis::Reply& m : Run({"ZRANGE", tk_.journey_applied_at(), "0", "-1"}).elements) {
    left.push_back(m.str);
  }
  EXPECT_EQ(left, (std::vector<std::string>{"recent", "cus_1"}));
  EXPECT_EQ(Run({"HLEN", tk_.journey_applied()}).integer, 2);
  EXPECT_EQ(Run({"HGET", tk_.journey_applied(), "recent"}).str, "5");

  // A forgotten customer's entries count again: kept_ms bounds how long a drain may die
  // between applying and deleting.
  EXPECT_EQ(Count("old_3", {"5", "ship:entered"}), 1);
  EXPECT_EQ(Count("recent", {"5", "ship:entered"}), 0);
  EXPECT_EQ(Counters()["ship:entered"], "2");
}

TEST_F(OutboxFunctionsTest, JourneyMovesOpenCasesAndRecordsStaysOnce) {
  const std::string m = "ship|001700000000000|cus_1|case-1";
  const std::vector<std::string> entries = {"1",    "jo",  m,
                                            "",     "",  //
                                            "2",    "n",   "ship:entered",
                                            "",     "",  //
                                            "3",    "jl",  m,
                                            "ship", "4200"};
  EXPECT_EQ(Journey("cus_1", entries), 3);
  EXPECT_EQ(Run({"ZCARD", tk_.journey_open()}).integer, 0) << "entered, then left";
  EXPECT_EQ(Run({"HGET", tk_.journey_stays(), "ship:n"}).str, "1");
  EXPECT_EQ(Run({"HGET", tk_.journey_stays(), "ship:0"}).str, "4200");
  // Replayed: the case does not come back and the stay is not recorded twice.
  EXPECT_EQ(Journey("cus_1", entries), 0);
  EXPECT_EQ(Run({"ZCARD", tk_.journey_open()}).integer, 0);
  EXPECT_EQ(Run({"HGET", tk_.journey_stays(), "ship:n"}).str, "1");
  EXPECT_EQ(Counters()["ship:entered"], "1");
}

TEST_F(OutboxFunctionsTest, JourneyRemovesAMovedCaseWithoutAStay) {
  const std::string from = "ship|001700000000000|cus_2|case-1";
  const std::string to = "ship|001700000000000|cus_1|case-1";
  Run({"ZADD", tk_.journey_open(), "0", from});
  const std::vector<std::string> entries = {"1", "jr", from, "", "", "2", "jo", to, "", ""};
  EXPECT_EQ(Journey("cus_1", entries), 2);
  std::vector<std::string> open;
  for (const redis::Reply& m : Run({"ZRANGE", tk_.journey_open(), "0", "-1"}).elements) {
    open.push_back(m.str);
  }
  EXPECT_EQ(open, std::vector<std::string>{to});
  EXPECT_TRUE(Run({"HGET", tk_.journey_stays(), "ship:n"}).is_nil()) << "a move is not a stay";
  EXPECT_EQ(Journey("cus_1", entries), 0);
}

TEST_F(OutboxFunctionsTest, DueAddsMovesAndForgetsPromisesOnce) {
  const std::string m = "acme|cus_1|case-1";
  EXPECT_EQ(Due("cus_1", {"1", "da", m, "5000", "2", "da", m, "9000"}), 2);
  EXPECT_EQ(Run({"ZSCORE", keys::DuePromisesKey(), m}).str, "9000") << "moved to the later time";
  EXPECT_EQ(Run({"HGET", keys::DuePromisesAppliedKey(), "acme|cus_1"}).str, "2");
  EXPECT_EQ(Due("cus_1", {"3", "dr", m, ""}), 1);
  EXPECT_TRUE(Run({"ZSCORE", keys::DuePromisesKey(), m}).is_nil());
  // A replay of the adds after the removal: the promise stays forgotten.
  EXPECT_EQ(Due("cus_1", {"1", "da", m, "5000", "2", "da", m, "9000", "3", "dr", m, ""}), 0);
  EXPECT_TRUE(Run({"ZSCORE", keys::DuePromisesKey(), m}).is_nil());
}

TEST_F(OutboxFunctionsTest, UnmarkClearsOnlyAnUnchangedMark) {
  const std::string pending = keys::PendingOutboxKey("acme", "cus_1");
  Run({"ZADD", pending, "3", "acme|cus_1", "1", "acme|cus_2"});
  OutboxUnmark call;
  call.pending = pending;
  call.member = "acme|cus_1";
  // A drain that started at mark 2: a write marked it again since (3), its drain clears it.
  call.mark = 2;
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"ZSCORE", pending, "acme|cus_1"}).str, "3");
  call.mark = 3;
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_TRUE(Run({"ZSCORE", pending, "acme|cus_1"}).is_nil());
  // Gone already: nothing to clear, and no other member is touched.
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"ZSCORE", pending, "acme|cus_2"}).str, "1");
}

}  // namespace
}  // namespace onestory::lua
