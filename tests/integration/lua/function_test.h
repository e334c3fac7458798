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
#include "libs/outbox/outbox.h"
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
  // and deletes them: libs/outbox's Drain, as after a call's answer (alerts, each journey
  // entry in the bucket of the customer it names, due promises in their bucket, the latest
  // activity in the customer's bucket). `now_ms` is not used: the marks are stamped now.
  // Returns the number of entries applied.
  int64_t ApplyOutbox(const std::string& customer_id, int64_t /*now_ms*/) {
    absl::StatusOr<int64_t> n = Await<int64_t>([&](Callback<int64_t> done) {
      outbox::Drain(client_.get(), "acme", customer_id, /*mark=*/0, Deadline(), std::move(done));
    });
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : 0;
  }

  RedisForTest* redis_ = nullptr;
  std::unique_ptr<redis::Client> client_;
};

}  // namespace onestory::testing
