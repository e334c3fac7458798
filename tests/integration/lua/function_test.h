// FunctionTest: the fixture of the tests of OneStory's Redis functions themselves
// (libs/*/lua/*.lua): one real redis-server for the binary, with the function library loaded,
// flushed before each test, hand-built keys, and calls straight to the functions (no store, no
// gRPC), so edge cases that are awkward to reach from outside are reached directly.
//
// Every command a function runs is watched (KeyAudit): when the binary ends, a function that
// touched a key it did not declare in KEYS fails it, and so does a function of the library no
// test called.
//
// Per-customer functions write their effects on tenant-wide keys (alerts, journey counters,
// the activity index) as entries of the customer's outbox (libs/outbox/lua/write.lua):
// OutboxEntries reads them, and ApplyOutbox applies them with outbox_alerts and outbox_journey
// as libs/outbox's Drain does, for a test whose point is the tenant keys.
//
//   TEST_F(FunctionTest, Something) {
//     Run({"HSET", ck.profile(), "created_at", "1"});
//     lua::ContextGet call;
//     call.profile = ck.profile();
//     absl::StatusOr<redis::Reply> r = Call(call);
//   }
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/outbox_alerts.h"
#include "libs/lua/outbox_delete.h"
#include "libs/lua/outbox_due.h"
#include "libs/lua/outbox_journey.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::testing {

// The redis-server the functions are tested on (started by the binary's test environment).
RedisForTest* FunctionTestRedis();

class FunctionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = FunctionTestRedis();
    redis_->FlushAll();  // keeps the functions
    client_ = std::make_unique<redis::Client>(redis_->ClientOptions());
  }

  redis::Reply Run(const std::vector<std::string>& argv) { return redis_->Run(argv); }

  template <typename CallT>
  absl::StatusOr<redis::Reply> Call(const CallT& call) {
    return Await<redis::Reply>(
        [&](Callback<redis::Reply> done) { client_->Fcall(call, Deadline(), std::move(done)); });
  }

  // One entry of a customer's outbox: its stream id and its fields (field "t": its kind).
  struct OutboxEntry {
    std::string id;
    std::map<std::string, std::string> fields;
    const std::string& t() const { return fields.at("t"); }
  };

  // The entries of the outbox of `customer_id` of tenant "acme", oldest first; with `kind`,
  // only the entries of that kind ("a" alert, "n" journey count, "x" activity).
  std::vector<OutboxEntry> OutboxEntries(const std::string& customer_id,
                                         const std::string& kind = "") {
    std::vector<OutboxEntry> out;
    redis::Reply r = Run({"XRANGE", keys::CustomerKeys("acme", customer_id).outbox(), "-", "+"});
    for (const redis::Reply& e : r.elements) {
      OutboxEntry entry{e.elements[0].str, {}};
      const auto& f = e.elements[1].elements;
      for (size_t i = 0; i + 1 < f.size(); i += 2) entry.fields[f[i].str] = f[i + 1].str;
      if (kind.empty() || entry.fields["t"] == kind) out.push_back(std::move(entry));
    }
    return out;
  }

  // Applies every entry of the outbox of `customer_id` of tenant "acme" to the tenant's keys
  // and deletes them, as libs/outbox's Drain does: alerts with outbox_alerts, journey entries
  // with outbox_journey and due promises with outbox_due (at `now_ms`, marks kept 7 days), the
  // latest activity with ZADD GT.
  // Returns the number of entries applied.
  int64_t ApplyOutbox(const std::string& customer_id, int64_t now_ms) {
    const keys::TenantKeys tk("acme");
    // Alerts go to the customer's bucket (libs/outbox/outbox.cc).
    const keys::TenantKeys ak("acme", keys::TenantBucket(customer_id));
    std::vector<OutboxEntry> entries = OutboxEntries(customer_id);
    lua::OutboxAlerts alerts;
    alerts.alert_log = ak.alert_log();
    alerts.alert_ids = ak.alert_ids();
    alerts.alert_open = ak.alert_open();
    alerts.customer_id = customer_id;
    alerts.alert_channel = ak.alert_channel();
    lua::OutboxJourney journey;
    journey.journey_counters = tk.journey_counters();
    journey.journey_open = tk.journey_open();
    journey.journey_stays = tk.journey_stays();
    journey.applied = tk.journey_applied();
    journey.applied_at = tk.journey_applied_at();
    journey.customer_id = customer_id;
    journey.now_ms = now_ms;
    journey.kept_ms = 7 * 86400000LL;
    lua::OutboxDue due;
    due.due_promises = keys::DuePromisesKey();
    due.applied = keys::DuePromisesAppliedKey();
    due.applied_at = keys::DuePromisesAppliedAtKey();
    due.owner = "acme|" + customer_id;
    due.now_ms = now_ms;
    due.kept_ms = 7 * 86400000LL;
    int64_t active_at = -1;
    lua::OutboxDelete applied;
    applied.outbox = keys::CustomerKeys("acme", customer_id).outbox();
    for (OutboxEntry& e : entries) {
      auto& f = e.fields;
      if (e.t() == "a") {
        alerts.alerts.insert(alerts.alerts.end(), {f["id"], f["k"], f["ca"], f["msg"], f["at"]});
      } else if (e.t() == "n") {
        journey.entries.insert(journey.entries.end(), {f["s"], "n", f["f"], "", ""});
      } else if (e.t() == "jo") {
        journey.entries.insert(journey.entries.end(), {f["s"], "jo", f["m"], "", ""});
      } else if (e.t() == "jl") {
        journey.entries.insert(journey.entries.end(), {f["s"], "jl", f["m"], f["g"], f["ms"]});
      } else if (e.t() == "da" || e.t() == "dr") {
        due.entries.insert(due.entries.end(), {f["s"], e.t(), f["m"], f["sc"]});
      } else if (e.t() == "x") {
        int64_t at = 0;
        EXPECT_TRUE(absl::SimpleAtoi(f["at"], &at)) << e.id;
        active_at = std::max(active_at, at);
      } else {
        ADD_FAILURE() << "outbox entry " << e.id << " of unknown kind " << e.t();
      }
      applied.ids.push_back(e.id);
    }
    if (!alerts.alerts.empty()) {
      absl::StatusOr<redis::Reply> r = Call(alerts);
      EXPECT_TRUE(r.ok()) << r.status();
    }
    if (!journey.entries.empty()) {
      absl::StatusOr<redis::Reply> r = Call(journey);
      EXPECT_TRUE(r.ok()) << r.status();
    }
    if (!due.entries.empty()) {
      absl::StatusOr<redis::Reply> r = Call(due);
      EXPECT_TRUE(r.ok()) << r.status();
    }
    if (active_at >= 0) {
      Run({"ZADD", tk.activity(), "GT", absl::StrCat(active_at), customer_id});
    }
    if (!entries.empty()) {
      absl::StatusOr<redis::Reply> r = Call(applied);
      EXPECT_TRUE(r.ok()) << r.status();
    }
    return static_cast<int64_t>(entries.size());
  }

  RedisForTest* redis_ = nullptr;
  std::unique_ptr<redis::Client> client_;
};

}  // namespace onestory::testing
