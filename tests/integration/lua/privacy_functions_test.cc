// The privacy functions (libs/privacy/lua/) called directly on hand-built keys: a redaction's
// copy resumed from its saved progress, the swap copying a tail appended meanwhile (or asking
// for more steps, or starting over after a merge), the record, its end and the recovery's drop;
// the copies of a redacted text in records; erase's tombstones (a merged customer's included),
// its reads, the identifier index, the alert log rebuilt without the erased customers' alerts,
// the alert ids, the journey index and the last step's keys; and the export's reads.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/privacy_drop_alert_ids.h"
#include "libs/lua/privacy_drop_alert_log.h"
#include "libs/lua/privacy_drop_index.h"
#include "libs/lua/privacy_drop_journey.h"
#include "libs/lua/privacy_drop_keys.h"
#include "libs/lua/privacy_drop_pending_redaction.h"
#include "libs/lua/privacy_export_range.h"
#include "libs/lua/privacy_export_read.h"
#include "libs/lua/privacy_read_customer.h"
#include "libs/lua/privacy_redact_begin.h"
#include "libs/lua/privacy_redact_chunk.h"
#include "libs/lua/privacy_redact_end.h"
#include "libs/lua/privacy_redact_read.h"
#include "libs/lua/privacy_redact_records.h"
#include "libs/lua/privacy_redact_swap.h"
#include "libs/lua/privacy_release_pending.h"
#include "libs/lua/privacy_tombstone_root.h"
#include "libs/lua/privacy_tombstone_source.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

class PrivacyFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  static std::map<std::string, std::string> Hash(const redis::Reply& r) {
    std::map<std::string, std::string> m;
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
      m[r.elements[i].str] = r.elements[i + 1].str;
    return m;
  }
  std::map<std::string, std::string> Stored(const std::string& key) {
    return Hash(Run({"HGETALL", key}));
  }
  // A stream's entries as "<id>=<value of field e>".
  std::vector<std::string> Entries(const std::string& key) {
    std::vector<std::string> out;
    for (const redis::Reply& e : Run({"XRANGE", key, "-", "+"}).elements) {
      std::map<std::string, std::string> f = Hash(e.elements[1]);
      out.push_back(absl::StrCat(e.elements[0].str, "=", f["e"]));
    }
    return out;
  }
  // XINFO STREAM's last id, entries-added and max-deleted id.
  std::string StreamIds(const std::string& key) {
    std::map<std::string, std::string> info;
    const redis::Reply r = Run({"XINFO", "STREAM", key});
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
      const redis::Reply& v = r.elements[i + 1];
      info[r.elements[i].str] = v.is_string() ? v.str : absl::StrCat(v.integer);
    }
    return absl::StrCat(info["last-generated-id"], " ", info["entries-added"], " ",
                        info["max-deleted-entry-id"]);
  }
  // A customer with a profile and `n` events "ev<i>" at stream ids "<i>-0" (1-based).
  void Customer(const keys::CustomerKeys& ck, int n) {
    Run({"HSET", ck.profile(), "created_at", "1"});
    for (int i = 1; i <= n; ++i) {
      Run({"XADD", ck.timeline(), absl::StrCat(i, "-0"), "e", absl::StrCat("blob", i)});
      Run({"HSET", ck.dedup(), absl::StrCat("ev", i), absl::StrCat(i, "-0")});
    }
  }
  template <typename CallT>
  CallT Step(const keys::CustomerKeys& ck, const std::string& customer_id, const std::string& token,
             int64_t max_entries, bool root = true) {
    CallT call;
    call.profile = ck.profile();
    call.timeline = ck.timeline();
    call.staging = ck.timeline_rebuild();
    call.dedup = ck.dedup();
    call.redaction = ck.redaction();
    call.merge_state = ck.merge_state();
    call.customer_id = customer_id;
    call.token = token;
    call.event_id = "ev3";
    call.blob = "REDACTED";
    call.max_entries = max_entries;
    call.max_bytes = 1 << 20;
    call.largest_entry = 1024;
    call.root = root ? 1 : 0;
    return call;
  }
  // {state, entries, bytes} of a copy step.
  std::string StepAnswer(const absl::StatusOr<redis::Reply>& r) {
    if (!r.ok()) return r.status().ToString();
    if (r->elements.size() != 3) return "bad reply";
    return absl::StrCat(r->elements[0].str, " ", r->elements[1].integer);
  }
  PrivacyDropAlertLog DropLog(std::vector<std::string> erased) {
    PrivacyDropAlertLog call;
    call.alert_log = ak_.alert_log();
    call.rebuild = ak_.alert_log_rebuild();
    call.alert_ids = ak_.alert_ids();
    call.alert_open = ak_.alert_open();
    call.alert_acks = ak_.alert_acks();
    call.erased = std::move(erased);
    return call;
  }
  // An alert of `customer` in the log, its id in the ids hash, open and acknowledged.
  void Alert(const std::string& id, const std::string& customer) {
    std::string sid = Run({"XADD", ak_.alert_log(), "*", "id", id, "k", "2", "c", customer, "ca",
                           "case-1", "msg", absl::StrCat("about ", customer)})
                          .str;
    Run({"HSET", ak_.alert_ids(), id, sid});
    Run({"ZADD", ak_.alert_open(), "1", id});
    Run({"HSET", ak_.alert_acks(), id, "{}"});
  }

  const keys::CustomerKeys ck_{"acme", "cus_1"};
  const keys::TenantKeys tk_{"acme"};
  // The bucket of cus_1's alerts (keys::TenantBucket).
  const keys::TenantKeys ak_{"acme", keys::TenantBucket("cus_1")};
  const std::string token_ = "00000000000000000007";
};

// ---- redaction ----------------------------------------------------------------------------------

TEST_F(PrivacyFunctionsTest, RedactChunkResumesFromItsSavedProgress) {
  Customer(ck_, 10);
  Run({"HSET", ck_.redaction(), "tok", token_});
  auto chunk = Step<PrivacyRedactChunk>(ck_, "cus_1", token_, 4);
  EXPECT_EQ(StepAnswer(Call(chunk)), "more 4");
  EXPECT_EQ(Stored(ck_.redaction())["copied"], "4-0");
  // A later run (a retry, or recovery after a crash) goes on where the first stopped.
  EXPECT_EQ(StepAnswer(Call(chunk)), "more 4");
  EXPECT_EQ(Stored(ck_.redaction())["copied"], "8-0");
  EXPECT_EQ(StepAnswer(Call(chunk)), "caught 2");
  std::vector<std::string> copied = Entries(ck_.timeline_rebuild());
  ASSERT_EQ(copied.size(), 10u);
  EXPECT_EQ(copied[0], "1-0=blob1");
  EXPECT_EQ(copied[2], "3-0=REDACTED");
  EXPECT_EQ(copied[9], "10-0=blob10");
  // The timeline itself is untouched until the swap.
  EXPECT_EQ(Entries(ck_.timeline())[2], "3-0=blob3");

  // A newer redaction finding this copy starts over; then the older one is stale.
  const std::string newer = "00000000000000000009";
  Run({"HSET", ck_.redaction(), "tok", newer});
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactChunk>(ck_, "cus_1", newer, 3))), "more 3");
  EXPECT_EQ(Entries(ck_.timeline_rebuild()).size(), 3u);
  EXPECT_EQ(StepAnswer(Call(chunk)), "stale 0");
  // A merged customer's copy (root 0) has no record of its own: only its progress counts.
  keys::CustomerKeys src("acme", "cus_0");
  Customer(src, 2);
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactChunk>(src, "cus_0", token_, 5, false))), "caught 2");
}

TEST_F(PrivacyFunctionsTest, RedactChunkGuardsTheRootOnly) {
  Run({"HSET", ck_.profile(), "erased_at", "5"});
  EXPECT_EQ(Call(Step<PrivacyRedactChunk>(ck_, "cus_1", token_, 4)).status().code(),
            absl::StatusCode::kNotFound);
  Run({"HSET", ck_.profile(), "created_at", "1", "merge_lock", "mrg_1"});
  Run({"HDEL", ck_.profile(), "erased_at"});
  Run({"HSET", ck_.redaction(), "tok", token_});
  // A held customer is copied (the copy is not a write to it) but not swapped.
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactChunk>(ck_, "cus_1", token_, 4))), "caught 0");
  EXPECT_EQ(Call(Step<PrivacyRedactSwap>(ck_, "cus_1", token_, 4)).status().code(),
            absl::StatusCode::kAborted);
}

TEST_F(PrivacyFunctionsTest, RedactSwapCopiesTheTailAppendedMeanwhile) {
  Customer(ck_, 6);
  Run({"HSET", ck_.redaction(), "tok", token_});
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactChunk>(ck_, "cus_1", token_, 10))), "caught 6");
  // Appended during the copy, and the oldest trimmed by retention meanwhile.
  Run({"XADD", ck_.timeline(), "7-0", "e", "blob7"});
  Run({"XADD", ck_.timeline(), "8-0", "e", "blob8"});
  Run({"XDEL", ck_.timeline(), "1-0"});
  std::string ids = StreamIds(ck_.timeline());
  // More appended than one step takes: the swap asks for more and swaps nothing.
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactSwap>(ck_, "cus_1", token_, 1))), "more 1");
  EXPECT_EQ(Entries(ck_.timeline())[1], "3-0=blob3");
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactSwap>(ck_, "cus_1", token_, 4))), "swapped 1");
  EXPECT_EQ(Entries(ck_.timeline()),
            (std::vector<std::string>{"2-0=blob2", "3-0=REDACTED", "4-0=blob4", "5-0=blob5",
                                      "6-0=blob6", "7-0=blob7", "8-0=blob8"}));
  EXPECT_EQ(StreamIds(ck_.timeline()), ids);
  EXPECT_EQ(Run({"EXISTS", ck_.timeline_rebuild()}).integer, 0);
  std::map<std::string, std::string> rd = Stored(ck_.redaction());
  EXPECT_EQ(rd["swapped"], token_);
  EXPECT_EQ(rd.count("copied"), 0u);
  // Run again (a retry after a lost answer): done, nothing copied.
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactSwap>(ck_, "cus_1", token_, 4))), "swapped 0");
}

TEST_F(PrivacyFunctionsTest, RedactSwapStartsOverWhenAMergeRebuiltTheTimeline) {
  Customer(ck_, 3);
  Run({"HSET", ck_.redaction(), "tok", token_});
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactChunk>(ck_, "cus_1", token_, 10))), "caught 3");
  Run({"HSET", ck_.merge_state(), "mrg_1:state", "done"});
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactSwap>(ck_, "cus_1", token_, 10))), "restart 0");
  EXPECT_EQ(Run({"EXISTS", ck_.timeline_rebuild()}).integer, 0);
  EXPECT_EQ(Stored(ck_.redaction())["copied"], "0-0");
  EXPECT_EQ(Entries(ck_.timeline())[2], "3-0=blob3");
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactChunk>(ck_, "cus_1", token_, 10))), "caught 3");
  EXPECT_EQ(StepAnswer(Call(Step<PrivacyRedactSwap>(ck_, "cus_1", token_, 10))), "swapped 0");
  EXPECT_EQ(Entries(ck_.timeline())[2], "3-0=REDACTED");
}

TEST_F(PrivacyFunctionsTest, RedactReadFindsTheEventOrSaysWhichIsMissing) {
  Customer(ck_, 3);
  PrivacyRedactRead call;
  call.profile = ck_.profile();
  call.dedup = ck_.dedup();
  call.timeline = ck_.timeline();
  call.customer_id = "cus_1";
  call.event_id = "ev2";
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 3u);
  EXPECT_EQ(r->elements[0].str, "2-0");
  EXPECT_EQ(Hash(r->elements[1])["e"], "blob2");
  EXPECT_EQ(r->elements[2].integer, 3);
  // An event whose entry retention trimmed is as missing as one never stored.
  Run({"XDEL", ck_.timeline(), "2-0"});
  r = Call(call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("event_id: customer cus_1 has no event ev2"),
            std::string::npos)
      << r.status();
}

TEST_F(PrivacyFunctionsTest, RedactionRecordIsWrittenOnceAndDroppedOnlyByItsOwnToken) {
  PrivacyRedactBegin begin;
  begin.redaction = ck_.redaction();
  begin.token = token_;
  begin.event_id = "ev1";
  begin.summary = "s";
  begin.body = "b";
  begin.blob = "new";
  begin.old_blob = "old";
  begin.stream_id = "1-0";
  begin.appended = "";
  begin.sources = "cus_0";
  absl::StatusOr<redis::Reply> r = Call(begin);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  begin.token = "00000000000000000008";
  EXPECT_EQ(Call(begin)->integer, 0);
  EXPECT_EQ(Stored(ck_.redaction())["tok"], token_);
  EXPECT_EQ(Stored(ck_.redaction())["srcs"], "cus_0");

  Run({"HSET", ck_.redaction(), "ptok", token_, "copied", "1-0", "mgn", "0"});
  Run({"XADD", ck_.timeline_rebuild(), "1-0", "e", "x"});
  PrivacyRedactEnd end;
  end.redaction = ck_.redaction();
  end.staging = ck_.timeline_rebuild();
  end.token = "00000000000000000008";
  end.drop_copy = 1;
  EXPECT_EQ(Call(end)->integer, 0);
  EXPECT_EQ(Stored(ck_.redaction()).size(), 12u);
  end.token = token_;
  end.drop_copy = 0;  // the record only: the copy's progress stays
  EXPECT_EQ(Call(end)->integer, 1);
  EXPECT_EQ(Stored(ck_.redaction()), (std::map<std::string, std::string>{
                                         {"ptok", token_}, {"copied", "1-0"}, {"mgn", "0"}}));
  EXPECT_EQ(Run({"EXISTS", ck_.timeline_rebuild()}).integer, 1);
  EXPECT_EQ(Call(begin)->integer, 1);
  end.token = begin.token;
  end.drop_copy = 1;
  EXPECT_EQ(Call(end)->integer, 1);
  EXPECT_EQ(Run({"EXISTS", ck_.redaction()}).integer, 0);
  EXPECT_EQ(Run({"EXISTS", ck_.timeline_rebuild()}).integer, 0);

  PrivacyDropPendingRedaction drop;
  drop.pending = keys::PendingRedactionsKey();
  drop.field = "acme/cus_1";
  drop.value = "100";
  Run({"HSET", keys::PendingRedactionsKey(), "acme/cus_1", "200"});
  EXPECT_EQ(Call(drop)->integer, 0);  // a step since the recovery read it
  drop.value = "200";
  EXPECT_EQ(Call(drop)->integer, 1);
  EXPECT_EQ(Run({"HLEN", keys::PendingRedactionsKey()}).integer, 0);
}

TEST_F(PrivacyFunctionsTest, RedactRecordsReplacesTheCopiesTheEventWrote) {
  Run({"HSET", ck_.cases(), "case-1",
       R"({"ln":"my card is 4111","le":"ev1","pt":"refund 4111","pte":"ev1"})", "case-2",
       R"({"ln":"other note","le":"ev9"})"});
  Run({"HSET", ck_.facts(), "order", R"({"v":"4111","ev":"ev1","pv":"","pe":""})", "city",
       R"({"v":"Paris","ev":"ev2","pv":"4111","pe":"ev1"})"});
  Run({"HSET", ck_.conversation_records(), "conv-1", R"({"oc":"sold 4111"})"});
  PrivacyRedactRecords call;
  call.cases = ck_.cases();
  call.facts = ck_.facts();
  call.conversation_records = ck_.conversation_records();
  call.event_id = "ev1";
  call.what = "note";
  call.case_id = "case-1";
  call.conversation_id = "conv-1";
  call.old_summary = R"(promise "refund 4111")";
  call.old_body = "my card is 4111";
  call.new_summary = "updated";
  call.new_body = "[removed]";
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 3);  // case-1, both facts; not the outcome (a note is no outcome)
  std::map<std::string, std::string> cases = Stored(ck_.cases());
  EXPECT_NE(cases["case-1"].find(R"("ln":"[removed]")"), std::string::npos) << cases["case-1"];
  EXPECT_NE(cases["case-1"].find(R"("pt":"")"), std::string::npos) << cases["case-1"];
  EXPECT_EQ(cases["case-2"], R"({"ln":"other note","le":"ev9"})");
  std::map<std::string, std::string> facts = Stored(ck_.facts());
  EXPECT_NE(facts["order"].find(R"("v":"")"), std::string::npos) << facts["order"];
  EXPECT_NE(facts["city"].find(R"("v":"Paris")"), std::string::npos) << facts["city"];
  EXPECT_NE(facts["city"].find(R"("pv":"")"), std::string::npos) << facts["city"];
  EXPECT_EQ(Stored(ck_.conversation_records())["conv-1"], R"({"oc":"sold 4111"})");
  call.what = "outcome";
  EXPECT_EQ(Call(call)->integer, 1);
  EXPECT_NE(Stored(ck_.conversation_records())["conv-1"].find(R"("oc":"")"), std::string::npos);
}

// ---- erase --------------------------------------------------------------------------------------

TEST_F(PrivacyFunctionsTest, TombstoneRootRefusesAMergedOrHeldCustomerAndIsIdempotent) {
  PrivacyTombstoneRoot call;
  call.profile = ck_.profile();
  call.erased_profile = ck_.erased_profile();
  call.customer_id = "cus_1";
  call.now_ms = "5000";
  call.notify = ck_.channel();
  EXPECT_EQ(Call(call).status().code(), absl::StatusCode::kNotFound);

  Run({"HSET", ck_.profile(), "created_at", "1", "display_name", "Ann", "merged_into", "cus_9"});
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].str, "moved");
  EXPECT_EQ(r->elements[1].str, "cus_9");
  EXPECT_EQ(Stored(ck_.profile())["display_name"], "Ann");
  EXPECT_EQ(Run({"EXISTS", ck_.erased_profile()}).integer, 0);

  Run({"HDEL", ck_.profile(), "merged_into"});
  Run({"HSET", ck_.profile(), "merge_lock", "mrg_1"});
  EXPECT_EQ(Call(call).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Stored(ck_.profile())["display_name"], "Ann");

  Run({"HDEL", ck_.profile(), "merge_lock"});
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].str, "tombstoned");
  EXPECT_EQ(Stored(ck_.profile()), (std::map<std::string, std::string>{{"erased_at", "5000"}}));
  EXPECT_EQ(Stored(ck_.erased_profile())["display_name"], "Ann");
  call.now_ms = "9000";
  r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->elements[0].str, "erased");
  EXPECT_EQ(r->elements[1].str, "5000");
}

TEST_F(PrivacyFunctionsTest, TombstoneSourceErasesAMergedCustomer) {
  // A customer merged into the one erased: its profile names its target; it is erased anyway.
  keys::CustomerKeys src("acme", "cus_0");
  Run({"HSET", src.profile(), "created_at", "1", "display_name", "Ann", "merged_into", "cus_1"});
  PrivacyTombstoneSource call;
  call.profile = src.profile();
  call.erased_profile = src.erased_profile();
  call.now_ms = "5000";
  call.notify = src.channel();
  EXPECT_EQ(Call(call)->integer, 1);
  EXPECT_EQ(Stored(src.profile()), (std::map<std::string, std::string>{{"erased_at", "5000"}}));
  EXPECT_EQ(Stored(src.erased_profile())["merged_into"], "cus_1");
  EXPECT_EQ(Call(call)->integer, 0);
  // One whose profile is gone already still gets its tombstone.
  keys::CustomerKeys gone("acme", "cus_2");
  call.profile = gone.profile();
  call.erased_profile = gone.erased_profile();
  EXPECT_EQ(Call(call)->integer, 1);
  EXPECT_EQ(Stored(gone.profile()), (std::map<std::string, std::string>{{"erased_at", "5000"}}));
}

TEST_F(PrivacyFunctionsTest, ReleasePendingDropsOnlyItsOwnRecord) {
  Run({"HSET", keys::PendingErasuresKey(), "acme/cus_1", "er_abc|100|-1|-1|"});
  PrivacyReleasePending call;
  call.pending = keys::PendingErasuresKey();
  call.field = "acme/cus_1";
  call.token = "er_ab";  // a prefix of the owner's token is not the owner
  EXPECT_EQ(Call(call)->integer, 0);
  call.token = "er_abc";
  EXPECT_EQ(Call(call)->integer, 1);
  EXPECT_EQ(Run({"HLEN", keys::PendingErasuresKey()}).integer, 0);
}

TEST_F(PrivacyFunctionsTest, ReadCustomerReadsWhatTheEraseNeeds) {
  Customer(ck_, 2);
  Run({"HSET", ck_.identifiers(), "email:a@b.com", "1"});
  Run({"HSET", ck_.cases(), "case-1", R"({"sg":"triage"})"});
  Run({"ZADD", ck_.merge_history(), "1", "mrg_1"});
  Run({"HSET", ck_.merge_state(), "mrg_2:state", "x"});
  Run({"HSET", ck_.erased_profile(), "display_name", "Ann"});
  PrivacyReadCustomer call;
  call.identifiers = ck_.identifiers();
  call.cases = ck_.cases();
  call.merge_history = ck_.merge_history();
  call.merge_state = ck_.merge_state();
  call.timeline = ck_.timeline();
  call.erased_profile = ck_.erased_profile();
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 6u);
  EXPECT_EQ(r->elements[0].elements[0].str, "email:a@b.com");
  EXPECT_EQ(Hash(r->elements[1])["case-1"], R"({"sg":"triage"})");
  EXPECT_EQ(r->elements[2].elements[0].str, "mrg_1");
  EXPECT_EQ(r->elements[3].elements[0].str, "mrg_2:state");
  EXPECT_EQ(r->elements[4].integer, 2);
  EXPECT_EQ(Hash(r->elements[5])["display_name"], "Ann");
}

TEST_F(PrivacyFunctionsTest, DropIndexDeletesOnlyAnEntryNamingAnErasedCustomer) {
  std::string index = keys::IdentifierKey("acme", v1::IDENTIFIER_TYPE_EMAIL, "a@b.com");
  PrivacyDropIndex call;
  call.index = index;
  call.erased = {"cus_1", "cus_0"};
  EXPECT_EQ(Call(call)->integer, 0);  // none
  Run({"SET", index, "cus_new"});     // taken by a new customer meanwhile
  EXPECT_EQ(Call(call)->integer, 0);
  EXPECT_EQ(Run({"GET", index}).str, "cus_new");
  Run({"SET", index, "cus_0"});
  EXPECT_EQ(Call(call)->integer, 1);
  EXPECT_EQ(Run({"EXISTS", index}).integer, 0);
}

// A list argument is bound by one unpack up to 7,000 values and by a loop past that
// (tools/lua_library.py): both give the function every value, in order.
TEST_F(PrivacyFunctionsTest, DropIndexReadsAListOfAnyLength) {
  std::string index = keys::IdentifierKey("acme", v1::IDENTIFIER_TYPE_EMAIL, "a@b.com");
  for (int n : {6999, 7000, 7001, 9000}) {
    PrivacyDropIndex call;
    call.index = index;
    for (int i = 1; i <= n; ++i) call.erased.push_back(absl::StrCat("cus_", i));
    Run({"SET", index, absl::StrCat("cus_", n + 1)});  // named by none of them
    EXPECT_EQ(Call(call)->integer, 0) << n;
    Run({"SET", index, absl::StrCat("cus_", n)});  // the last one
    EXPECT_EQ(Call(call)->integer, 1) << n;
    EXPECT_EQ(Run({"EXISTS", index}).integer, 0) << n;
    Run({"SET", index, "cus_1"});  // the first one
    EXPECT_EQ(Call(call)->integer, 1) << n;
  }
}

TEST_F(PrivacyFunctionsTest, DropAlertLogKeepsOtherCustomersAlerts) {
  // Nothing of theirs: the log is not rebuilt.
  Alert("negative_streak:cus_2:1-0", "cus_2");
  std::string before = StreamIds(ak_.alert_log());
  EXPECT_EQ(Call(DropLog({"cus_1"}))->integer, 0);
  EXPECT_EQ(StreamIds(ak_.alert_log()), before);

  Alert("repeat_contact:cus_1:case-1", "cus_1");
  Alert("repeat_contact:cus_2:case-1", "cus_2");
  Alert("negative_streak:cus_0:3-0", "cus_0");
  Alert("promise_overdue:cus_1:case-2", "cus_1");
  std::vector<std::string> all = Entries(ak_.alert_log());
  std::string last =
      Run({"XREVRANGE", ak_.alert_log(), "+", "-", "COUNT", "1"}).elements[0].elements[0].str;
  absl::StatusOr<redis::Reply> r = Call(DropLog({"cus_1", "cus_0"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 3);
  std::vector<std::string> kept;
  for (const redis::Reply& e : Run({"XRANGE", ak_.alert_log(), "-", "+"}).elements) {
    kept.push_back(Hash(e.elements[1])["id"]);
  }
  EXPECT_EQ(kept,
            (std::vector<std::string>{"negative_streak:cus_2:1-0", "repeat_contact:cus_2:case-1"}));
  // The log keeps its last id and entries-added; the latest deleted is the last of theirs.
  EXPECT_EQ(StreamIds(ak_.alert_log()), absl::StrCat(last, " 5 ", last));
  for (const char* gone : {"repeat_contact:cus_1:case-1", "negative_streak:cus_0:3-0",
                           "promise_overdue:cus_1:case-2"}) {
    EXPECT_EQ(Run({"HEXISTS", ak_.alert_ids(), gone}).integer, 0) << gone;
    EXPECT_TRUE(Run({"ZSCORE", ak_.alert_open(), gone}).is_nil()) << gone;
    EXPECT_EQ(Run({"HEXISTS", ak_.alert_acks(), gone}).integer, 0) << gone;
  }
  EXPECT_EQ(Run({"HLEN", ak_.alert_ids()}).integer, 2);
  EXPECT_EQ(Run({"ZCARD", ak_.alert_open()}).integer, 2);
  EXPECT_EQ(Run({"HLEN", ak_.alert_acks()}).integer, 2);
  EXPECT_EQ(Run({"EXISTS", ak_.alert_log_rebuild()}).integer, 0);

  // Every alert theirs: the emptied log keeps its last id.
  Run({"DEL", ak_.alert_log()});
  Alert("repeat_contact:cus_1:case-3", "cus_1");
  std::string only = StreamIds(ak_.alert_log());
  EXPECT_EQ(Call(DropLog({"cus_1"}))->integer, 1);
  EXPECT_EQ(Run({"XLEN", ak_.alert_log()}).integer, 0);
  EXPECT_EQ(StreamIds(ak_.alert_log()).substr(0, only.find(' ')), only.substr(0, only.find(' ')));
}

TEST_F(PrivacyFunctionsTest, DropAlertIdsScansEveryPage) {
  // Ids of alerts trimmed from the log (no entry there) go too, page by page.
  for (int i = 0; i < 2500; ++i) {
    std::string customer = i % 2 == 0 ? "cus_1" : "cus_2";
    std::string id = absl::StrCat("negative_streak:", customer, ":", i, "-0");
    Run({"HSET", ak_.alert_ids(), id, "1-0"});
    Run({"ZADD", ak_.alert_open(), "1", id});
  }
  PrivacyDropAlertIds call;
  call.alert_ids = ak_.alert_ids();
  call.alert_open = ak_.alert_open();
  call.alert_acks = ak_.alert_acks();
  call.cursor = "0";
  call.erased = {"cus_1"};
  int64_t forgotten = 0;
  int pages = 0;
  do {
    absl::StatusOr<redis::Reply> r = Call(call);
    ASSERT_TRUE(r.ok()) << r.status();
    call.cursor = r->elements[0].str;
    forgotten += r->elements[1].integer;
    ++pages;
  } while (call.cursor != "0" && pages < 100);
  EXPECT_GT(pages, 1);
  EXPECT_EQ(forgotten, 1250);
  EXPECT_EQ(Run({"HLEN", ak_.alert_ids()}).integer, 1250);
  EXPECT_EQ(Run({"ZCARD", ak_.alert_open()}).integer, 1250);
}

TEST_F(PrivacyFunctionsTest, DropJourneyRemovesTheErasedCustomersEntriesOnly) {
  // One call per erased customer, on its own bucket of the index, with the cases of all the
  // erased customers: here cus_1's bucket.
  const std::string open = keys::TenantKeys("acme", keys::TenantBucket("cus_1")).journey_open();
  // cus_1 (erased) holds case-1 in triage since 1000 (an entry under its own name; one under
  // cus_0's, which it was merged from, is in cus_0's bucket and not this call's), case-2 in
  // fixing, case-3 resolved, case-4 out of the journey; cus_2 (not erased) has a case-1 of its
  // own in the same stage and time (here in the same key, as if in the same bucket).
  Run({"HSET", ck_.cases(), "case-1", R"({"s":"o","sg":"triage","se":1000})", "case-2",
       R"({"s":"o","sg":"fixing","se":2000})", "case-3", R"({"s":"r","sg":"","se":500})", "case-4",
       R"({"s":"o","sg":"","se":700})"});
  Run({"ZADD", open, "0", "triage|000000000001000|cus_1|case-1", "0",
       "fixing|000000000002000|cus_1|case-2", "0", "triage|000000000001000|cus_2|case-1", "0",
       "fixing|000000000002000|cus_2|case-9"});
  PrivacyDropJourney call;
  call.journey_open = open;
  call.customer = "cus_1";
  for (const redis::Reply& f : Run({"HGETALL", ck_.cases()}).elements) call.cases.push_back(f.str);
  absl::StatusOr<redis::Reply> r = Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 2);
  std::vector<std::string> left;
  for (const redis::Reply& m : Run({"ZRANGE", open, "0", "-1"}).elements) left.push_back(m.str);
  EXPECT_EQ(left, (std::vector<std::string>{"fixing|000000000002000|cus_2|case-9",
                                            "triage|000000000001000|cus_2|case-1"}));
  // Again (a rerun of the step): nothing left to remove.
  EXPECT_EQ(Call(call)->integer, 0);
}

TEST_F(PrivacyFunctionsTest, DropKeysLeavesOnlyTheTombstone) {
  Customer(ck_, 2);
  Run({"HSET", ck_.cases(), "case-1", "{}"});
  PrivacyDropKeys call;
  call.profile = ck_.profile();
  call.others = {ck_.timeline(), ck_.dedup(), ck_.cases(), ck_.facts()};
  call.now_ms = "7000";
  EXPECT_EQ(Call(call)->integer, 3);  // facts never existed
  EXPECT_EQ(Stored(ck_.profile()), (std::map<std::string, std::string>{{"erased_at", "7000"}}));
  EXPECT_EQ(Run({"KEYS", "*"}).elements.size(), 1u);
  // A tombstone made earlier is kept as it is.
  call.now_ms = "9000";
  EXPECT_EQ(Call(call)->integer, 0);
  EXPECT_EQ(Stored(ck_.profile())["erased_at"], "7000");
}

// ---- export -------------------------------------------------------------------------------------

TEST_F(PrivacyFunctionsTest, ExportReadsFollowTheGuard) {
  Customer(ck_, 5);
  Run({"HSET", ck_.identifiers(), "email:a@b.com", "1"});
  Run({"HSET", ck_.facts(), "order", "{}"});
  PrivacyExportRead read;
  read.profile = ck_.profile();
  read.identifiers = ck_.identifiers();
  read.conversation_records = ck_.conversation_records();
  read.cases = ck_.cases();
  read.facts = ck_.facts();
  read.customer_id = "cus_1";
  absl::StatusOr<redis::Reply> r = Call(read);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 5u);
  EXPECT_EQ(Hash(r->elements[0])["created_at"], "1");
  EXPECT_EQ(Hash(r->elements[1]).size(), 1u);
  EXPECT_EQ(Hash(r->elements[4]).size(), 1u);

  PrivacyExportRange range;
  range.profile = ck_.profile();
  range.timeline = ck_.timeline();
  range.customer_id = "cus_1";
  range.start = "(2-0";
  range.count = 2;
  r = Call(range);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->elements.size(), 2u);
  EXPECT_EQ(r->elements[0].elements[0].str, "3-0");
  EXPECT_EQ(r->elements[1].elements[0].str, "4-0");

  // A merged customer answers OS_MOVED (the caller follows it); a held one is still read.
  Run({"HSET", ck_.profile(), "merge_lock", "mrg_1"});
  EXPECT_TRUE(Call(read).ok());
  Run({"HSET", ck_.profile(), "merged_into", "cus_9"});
  EXPECT_EQ(Call(read).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Call(range).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace onestory::lua
