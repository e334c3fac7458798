// timeline_append and timeline_range (libs/timeline/lua/) called directly on hand-built keys:
// dedup, retention trim, contact counting, the activity and alerts written to the customer's
// outbox (an alert raised once when applied), the guard on merged, erased and held customers
// (nothing written), and reading a page.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/common/time_util.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/timeline_append.h"
#include "libs/lua/timeline_range.h"
#include "libs/timeline/event_effects.h"
#include "onestory/v1/alert.pb.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

constexpr int64_t kNow = 1700000000000;

class TimelineFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  static v1::Event Event(const std::string& event_id, const std::string& conversation = "",
                         std::optional<float> sentiment = std::nullopt) {
    v1::Event e;
    e.set_event_id(event_id);
    e.set_channel(v1::CHANNEL_VOICE);
    e.set_kind(v1::EVENT_KIND_MESSAGE);
    *e.mutable_occurred_at() = FromMillis(kNow - 1000);
    e.set_conversation_id(conversation);
    if (sentiment) e.set_sentiment(*sentiment);
    return e;
  }
  TimelineAppend Append(const std::vector<v1::Event>& events, int64_t max_events = 0) {
    TimelineAppend call;
    call.profile = ck_.profile();
    call.timeline = ck_.timeline();
    call.dedup = ck_.dedup();
    call.conversations = ck_.conversations();
    call.identifiers = ck_.identifiers();
    call.conversation_records = ck_.conversation_records();
    call.cases = ck_.cases();
    call.contacts = ck_.contacts();
    call.contact_channels = ck_.contact_channels();
    call.signals = ck_.signals();
    call.outbox = ck_.outbox();
    call.customer_id = "cus_1";
    call.now_ms = kNow;
    call.notify_channel = ck_.channel();
    call.repeat_window_ms = 7 * 86400000LL;
    call.alert_repeat_contacts = 3;
    call.alert_negative_streak = 3;
    call.max_events = max_events;
    for (const v1::Event& e : events) timeline::AppendEventArgs(e, &call.events);
    return call;
  }
  // Appends and returns per event {stream id, duplicate}; checks the reply's shape (three values
  // per event) and its last element, the length of the customer's outbox.
  std::vector<std::pair<std::string, int64_t>> Appended(const TimelineAppend& call) {
    absl::StatusOr<redis::Reply> r = Call(call);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<std::pair<std::string, int64_t>> out;
    if (!r.ok() || r->elements.empty()) return out;
    EXPECT_EQ(r->elements.size() % 3, 1u);
    for (size_t i = 0; i + 3 < r->elements.size(); i += 3) {
      out.emplace_back(r->elements[i].str, r->elements[i + 1].integer);
      if (r->elements[i + 1].integer == 0) {
        EXPECT_EQ(r->elements[i + 2].str, "");
      }
    }
    EXPECT_EQ(r->elements.back().integer, Run({"XLEN", ck_.outbox()}).integer);
    return out;
  }
  int64_t Len() { return Run({"XLEN", ck_.timeline()}).integer; }
  void Create() { Run({"HSET", ck_.profile(), "created_at", "1"}); }

  const keys::CustomerKeys ck_{"acme", "cus_1"};
  const keys::TenantKeys tk_{"acme"};
  // The bucket of cus_1's alerts (keys::TenantBucket).
  const keys::TenantKeys ak_{"acme", keys::TenantBucket("cus_1")};
};

TEST_F(TimelineFunctionsTest, StoresEventsAndARepeatedEventIdWritesNothing) {
  Create();
  auto first = Appended(Append({Event("ev_1"), Event("ev_2")}));
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].second, 0);
  EXPECT_EQ(first[1].second, 0);
  EXPECT_EQ(Len(), 2);
  EXPECT_EQ(Run({"HGET", ck_.dedup(), "ev_1"}).str, first[0].first);
  // The activity goes to the outbox, not to the tenant's index (another slot).
  std::vector<OutboxEntry> ob = OutboxEntries("cus_1");
  ASSERT_EQ(ob.size(), 1u);
  EXPECT_EQ(ob[0].t(), "x");
  EXPECT_EQ(ob[0].fields["at"], absl::StrCat(kNow));
  EXPECT_EQ(
      Run({"EXISTS", keys::TenantKeys("acme", keys::TenantBucket("cus_1")).activity()}).integer, 0);
  EXPECT_EQ(ApplyOutbox("cus_1", kNow), 1);
  EXPECT_EQ(
      Run({"ZSCORE", keys::TenantKeys("acme", keys::TenantBucket("cus_1")).activity(), "cus_1"})
          .str,
      absl::StrCat(kNow));

  // ev_1 again (with other content): answered with the stored event, nothing written.
  absl::StatusOr<redis::Reply> r = Call(Append({Event("ev_1", "conv_x", -0.9f)}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 4u);  // the event's three values, then the outbox's length
  EXPECT_EQ(r->elements[0].str, first[0].first);
  EXPECT_EQ(r->elements[1].integer, 1);
  EXPECT_EQ(r->elements[2].str, Event("ev_1").SerializeAsString());
  EXPECT_EQ(r->elements[3].integer, 0);
  EXPECT_EQ(Run({"XLEN", ck_.outbox()}).integer, 0);
  EXPECT_EQ(Len(), 2);
  EXPECT_EQ(Run({"EXISTS", ck_.conversations(), ck_.contacts(), ck_.signals()}).integer, 0);
}

TEST_F(TimelineFunctionsTest, WritesTheActivityAtMostOnceAMinute) {
  Create();
  TimelineAppend call = Append({Event("ev_1")});
  Appended(call);
  call = Append({Event("ev_2")});
  call.now_ms = kNow + 59999;
  Appended(call);
  EXPECT_EQ(OutboxEntries("cus_1", "x").size(), 1u);
  call = Append({Event("ev_3")});
  call.now_ms = kNow + 60000;
  Appended(call);
  std::vector<OutboxEntry> x = OutboxEntries("cus_1", "x");
  ASSERT_EQ(x.size(), 2u);
  EXPECT_EQ(x[1].fields["at"], absl::StrCat(kNow + 60000));
  // Applied, the index holds the latest.
  EXPECT_EQ(ApplyOutbox("cus_1", kNow + 60000), 2);
  EXPECT_EQ(
      Run({"ZSCORE", keys::TenantKeys("acme", keys::TenantBucket("cus_1")).activity(), "cus_1"})
          .str,
      absl::StrCat(kNow + 60000));
}

TEST_F(TimelineFunctionsTest, TrimsToTheTenantsMaxEvents) {
  Create();
  for (int i = 1; i <= 5; ++i) Appended(Append({Event(absl::StrCat("ev_", i))}, 3));
  // max_events 3 (below 200: no slack): the oldest two went, with their dedup entries.
  EXPECT_EQ(Len(), 3);
  EXPECT_EQ(Run({"HLEN", ck_.dedup()}).integer, 3);
  EXPECT_EQ(Run({"HEXISTS", ck_.dedup(), "ev_2"}).integer, 0);
  EXPECT_EQ(Run({"HEXISTS", ck_.dedup(), "ev_3"}).integer, 1);
}

TEST_F(TimelineFunctionsTest, CountsAConversationAsOneContact) {
  Create();
  Appended(Append({Event("ev_1", "conv_a"), Event("ev_2", "conv_a")}));
  Appended(Append({Event("ev_3", "conv_a")}));
  Appended(Append({Event("ev_4", "conv_b")}));
  EXPECT_EQ(Run({"ZCARD", ck_.contacts()}).integer, 2);
  EXPECT_EQ(Run({"ZSCORE", ck_.contact_channels(), absl::StrCat(v1::CHANNEL_VOICE)}).str,
            absl::StrCat(kNow - 1000));
  EXPECT_EQ(Run({"HLEN", ck_.conversation_records()}).integer, 2);
  // "<first ms>|<last ms>|<events>|<channel>"
  EXPECT_EQ(Run({"HGET", ck_.conversations(), "conv_a"}).str,
            absl::StrCat(kNow - 1000, "|", kNow - 1000, "|3|", v1::CHANNEL_VOICE));
}

TEST_F(TimelineFunctionsTest, RaisesANegativeStreakAlertOnce) {
  Create();
  std::vector<std::pair<std::string, int64_t>> ids;
  for (int i = 1; i <= 5; ++i) {
    auto one = Appended(Append({Event(absl::StrCat("ev_", i), "", -0.8f)}));
    ids.insert(ids.end(), one.begin(), one.end());
  }
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(Run({"HGET", ck_.signals(), "streak"}).str, "5");
  // One alert entry, for the third negative event, in the outbox; no tenant key written.
  std::vector<OutboxEntry> a = OutboxEntries("cus_1", "a");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].fields["id"], absl::StrCat("negative_streak:cus_1:", ids[2].first));
  EXPECT_EQ(a[0].fields["k"], absl::StrCat(v1::ALERT_KIND_NEGATIVE_STREAK));
  EXPECT_EQ(a[0].fields["ca"], "");
  EXPECT_EQ(a[0].fields["msg"], "customer cus_1 had 3 negative interactions in a row");
  EXPECT_EQ(a[0].fields["at"], absl::StrCat(kNow));
  EXPECT_EQ(Run({"EXISTS", ak_.alert_log(), ak_.alert_ids(), ak_.alert_open()}).integer, 0);
  ApplyOutbox("cus_1", kNow);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 1);
  EXPECT_EQ(Run({"HLEN", ak_.alert_ids()}).integer, 1);
  EXPECT_EQ(Run({"ZCARD", ak_.alert_open()}).integer, 1);
  // A positive event ends the streak; three more negatives raise a second (new) streak once.
  Appended(Append({Event("ev_6", "", 0.9f)}));
  EXPECT_EQ(Run({"HGET", ck_.signals(), "streak"}).str, "0");
  for (int i = 7; i <= 10; ++i) Appended(Append({Event(absl::StrCat("ev_", i), "", -0.8f)}));
  EXPECT_EQ(OutboxEntries("cus_1", "a").size(), 1u);
  ApplyOutbox("cus_1", kNow);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 2);
}

TEST_F(TimelineFunctionsTest, GuardRefusesUnknownErasedMergedAndHeldCustomers) {
  absl::StatusOr<redis::Reply> r = Call(Append({Event("ev_1")}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 not found");

  Run({"HSET", ck_.profile(), "erased_at", "1"});
  r = Call(Append({Event("ev_1")}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 was erased");

  Run({"DEL", ck_.profile()});
  Run({"HSET", ck_.profile(), "created_at", "1", "merged_into", "cus_2", "merge_id", "mg_7",
       "merged_head", "5-0"});
  r = Call(Append({Event("ev_1")}));
  std::optional<identity::Moved> moved = identity::MovedTo(r.status());
  ASSERT_TRUE(moved.has_value()) << r.status();
  EXPECT_EQ(moved->target, "cus_2");

  Run({"DEL", ck_.profile()});
  Run({"HSET", ck_.profile(), "created_at", "1", "merge_lock", "mg_8"});
  r = Call(Append({Event("ev_1")}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();

  // Nothing of any of them was written.
  EXPECT_EQ(Run({"EXISTS", ck_.timeline(), ck_.dedup(), ck_.outbox()}).integer, 0);
}

TEST_F(TimelineFunctionsTest, RangeReadsAPageAndRemapsAnOldPosition) {
  Create();
  auto ids = Appended(Append({Event("ev_1"), Event("ev_2"), Event("ev_3")}));
  ASSERT_EQ(ids.size(), 3u);
  TimelineRange call;
  call.profile = ck_.profile();
  call.timeline = ck_.timeline();
  call.remap = ck_.remap();
  call.customer_id = "cus_1";
  call.order = "asc";
  call.start = absl::StrCat("(", ids[0].first);
  call.count = 10;
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 2u);
  EXPECT_EQ(r->elements[0].elements[0].str, ids[1].first);
  // A position from before a merge renumbered the timeline reads on from where it went.
  Run({"HSET", ck_.remap(), "1-0", ids[1].first});
  call.start = "(1-0";
  call.order = "asc";
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 1u);
  EXPECT_EQ(r->elements[0].elements[0].str, ids[2].first);
  // Newest first, one entry.
  call.order = "desc";
  call.start = "+";
  call.count = 1;
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 1u);
  EXPECT_EQ(r->elements[0].elements[0].str, ids[2].first);
}

}  // namespace
}  // namespace onestory::lua
