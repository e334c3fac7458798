// context_get (libs/context/lua/get.lua) called directly on hand-built keys: the identity guard
// on unknown, erased, merged and held customers, and what one call reads.
#include "libs/lua/context_get.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

constexpr int64_t kDay = 86400000;

class ContextGetTest : public onestory::testing::FunctionTest {
 protected:
  ContextGet CallFor(const std::string& customer_id, int64_t recent, int64_t now) {
    keys::CustomerKeys ck("acme", customer_id);
    ContextGet call;
    call.profile = ck.profile();
    call.identifiers = ck.identifiers();
    call.timeline = ck.timeline();
    call.conversations = ck.conversations();
    call.conversation_records = ck.conversation_records();
    call.cases = ck.cases();
    call.facts = ck.facts();
    call.contacts = ck.contacts();
    call.contact_channels = ck.contact_channels();
    call.signals = ck.signals();
    call.customer_id = customer_id;
    call.recent = recent;
    call.now_ms = now;
    return call;
  }
  const keys::CustomerKeys ck_{"acme", "cus_1"};
  const int64_t now_ = absl::ToUnixMillis(absl::Now());
};

TEST_F(ContextGetTest, UnknownCustomerIsNotFound) {
  absl::StatusOr<redis::Reply> r = Call(CallFor("cus_1", 5, now_));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 not found");
}

TEST_F(ContextGetTest, ErasedCustomerSaysSo) {
  Run({"HSET", ck_.profile(), "erased_at", "1700000000000"});
  absl::StatusOr<redis::Reply> r = Call(CallFor("cus_1", 5, now_));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(r.status().message(), "customer cus_1 was erased");
}

TEST_F(ContextGetTest, MergedCustomerAnswersWhereItWent) {
  Run({"HSET", ck_.profile(), "created_at", "1", "merged_into", "cus_2", "merge_id", "mg_7",
       "merged_head", "1700000000000-3"});
  absl::StatusOr<redis::Reply> r = Call(CallFor("cus_1", 5, now_));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  std::optional<identity::Moved> moved = identity::MovedTo(r.status());
  ASSERT_TRUE(moved.has_value()) << r.status();
  EXPECT_EQ(moved->target, "cus_2");
  EXPECT_EQ(moved->merge_id, "mg_7");
  EXPECT_EQ(moved->head, "1700000000000-3");
}

TEST_F(ContextGetTest, CustomerHeldByAMergeIsStillRead) {
  // The guard refuses writes to a held customer (OS_BUSY), never reads.
  Run({"HSET", ck_.profile(), "created_at", "1", "merge_lock", "mg_8"});
  absl::StatusOr<redis::Reply> r = Call(CallFor("cus_1", 5, now_));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 12u);
}

TEST_F(ContextGetTest, ReadsEverythingInOneCall) {
  Run({"HSET", ck_.profile(), "created_at", "1", "name", "Ana", "act:2", "5"});
  Run({"HSET", ck_.identifiers(), "phone:+15551230000", "1"});
  for (int i = 1; i <= 5; ++i) {
    Run({"XADD", ck_.timeline(), absl::StrCat(i, "-0"), "e", absl::StrCat("event ", i)});
  }
  Run({"HSET", ck_.conversations(), "cv_1", "1|2|3|4", "cv_2", "5|6|7|1"});
  Run({"HSET", ck_.conversation_records(), "cv_2", "{\"r\":2}"});
  Run({"HSET", ck_.cases(), "ca_open", "{\"s\":\"o\"}", "ca_recent",
       absl::StrCat("{\"s\":\"r\",\"rs\":", now_ - kDay, "}"), "ca_old",
       absl::StrCat("{\"s\":\"r\",\"rs\":", now_ - 40 * kDay, "}")});
  Run({"HSET", ck_.facts(), "order", "{\"v\":1}"});
  Run({"ZADD", ck_.contacts(), absl::StrCat(now_ - kDay), "c1", absl::StrCat(now_ - 10 * kDay),
       "c2", absl::StrCat(now_ - 40 * kDay), "c3"});
  Run({"ZADD", ck_.contact_channels(), absl::StrCat(now_ - 2 * kDay), "2",
       absl::StrCat(now_ - 31 * kDay), "3"});
  Run({"HSET", ck_.signals(), "streak", "2"});

  absl::StatusOr<redis::Reply> r = Call(CallFor("cus_1", 3, now_));
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& e = r->elements;
  ASSERT_EQ(e.size(), 12u);
  EXPECT_EQ(e[0].elements.size(), 6u);  // profile: 3 fields
  EXPECT_EQ(e[1].elements.size(), 2u);  // identifiers
  ASSERT_EQ(e[2].elements.size(), 3u);  // the 3 latest events, newest first
  EXPECT_EQ(e[2].elements[0].elements[0].str, "5-0");
  EXPECT_EQ(e[2].elements[2].elements[0].str, "3-0");
  ASSERT_EQ(e[3].elements.size(), 4u);  // conversations
  EXPECT_EQ(e[4].integer, 5);           // timeline length
  ASSERT_EQ(e[5].elements.size(), 2u);  // their records, in their order, '' for none
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(e[5].elements[i].str, e[3].elements[2 * i].str == "cv_2" ? "{\"r\":2}" : "");
  }
  ASSERT_EQ(e[6].elements.size(), 4u);  // the open case and the one resolved a day ago
  for (size_t i = 0; i < e[6].elements.size(); i += 2) {
    EXPECT_NE(e[6].elements[i].str, "ca_old");
  }
  EXPECT_EQ(e[7].elements.size(), 2u);  // facts
  EXPECT_EQ(e[8].integer, 1);           // contacts in 7 days
  EXPECT_EQ(e[9].integer, 2);           // contacts in 30 days
  EXPECT_EQ(e[10].integer, 1);          // channels in 30 days
  ASSERT_EQ(e[11].elements.size(), 2u);
  EXPECT_EQ(e[11].elements[1].str, "2");
}

TEST_F(ContextGetTest, WritesNothing) {
  Run({"HSET", ck_.profile(), "created_at", "1"});
  auto before = redis_->Snapshot();
  ASSERT_TRUE(Call(CallFor("cus_1", 5, now_)).ok());
  EXPECT_EQ(redis_->Snapshot(), before);
}

}  // namespace
}  // namespace onestory::lua
