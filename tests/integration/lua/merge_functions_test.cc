// The merge functions (libs/merge/lua/) called directly on hand-built keys: a lock refused on a
// held or merged customer, a record that never goes back a step, a staged chunk written once
// when retried (timeline and engagement state), the swap keeping the target's own record on an
// id clash while the source's case moves its journey entry and due promise through the target's
// outbox (and the restore and the remove giving them back, each in one customer's slot),
// identifiers moved by compare-and-set, the source marked and released, and the return giving
// back what came from the source.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/merge_abandon.h"
#include "libs/lua/merge_add_identifiers.h"
#include "libs/lua/merge_lock.h"
#include "libs/lua/merge_mark.h"
#include "libs/lua/merge_move_index.h"
#include "libs/lua/merge_release_notify.h"
#include "libs/lua/merge_release_source.h"
#include "libs/lua/merge_remove.h"
#include "libs/lua/merge_remove_chunk.h"
#include "libs/lua/merge_restore.h"
#include "libs/lua/merge_return.h"
#include "libs/lua/merge_save_step.h"
#include "libs/lua/merge_stage.h"
#include "libs/lua/merge_stage_engagement.h"
#include "libs/lua/merge_stage_remap.h"
#include "libs/lua/merge_swap.h"
#include "libs/lua/merge_unlock.h"
#include "libs/redis/slot_map.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::lua {
namespace {

constexpr char kMerge[] = "mrg_1";
constexpr int64_t kEntered = 1700000000000;

class MergeFunctionsTest : public onestory::testing::FunctionTest {
 protected:
  MergeLock Lock(const keys::CustomerKeys& ck, const std::string& id, const std::string& role) {
    MergeLock call;
    call.profile = ck.profile();
    call.customer_id = id;
    call.lock = kMerge;
    call.role = role;
    call.expected_target = "cus_t";
    call.merge_id = kMerge;
    return call;
  }
  MergeStage Stage(const std::vector<std::string>& entries) {
    MergeStage call;
    call.staging = tk_.merge_staging(kMerge);
    call.merge_state = tk_.merge_state();
    call.staging_dedup = tk_.merge_staging_dedup(kMerge);
    call.staging_remap = tk_.merge_staging_remap(kMerge);
    call.merge_id = kMerge;
    call.entries = entries;
    return call;
  }
  // merge_stage_engagement into `into`'s staging hash; `done` the marker that ends it.
  MergeStageEngagement StageEngagement(const keys::CustomerKeys& into, const std::string& done,
                                       const std::string& only_merge,
                                       const std::vector<std::string>& pairs) {
    MergeStageEngagement call;
    call.staging = into.merge_staging_engagement(kMerge);
    call.merge_state = into.merge_state();
    call.done = absl::StrCat(kMerge, ":", done);
    call.only_merge = only_merge;
    call.pairs = pairs;
    return call;
  }
  // The source's engagement state as the merge stages it in the target's slot (SeedEngagement's,
  // case_2's promise as the due-promise index holds it).
  std::vector<std::string> SourceStaged() {
    return {"ca|case_1",  Case("shipped", "the source's"),
            "ca|case_2",  Case("ordered", "only the source's"),
            "du|case_2",  "1700000900000",
            "cc|3",       "200",
            "ct|conv_9",  "150",
            "sg|n:19675", "2",
            "sg|streak",  "2"};
  }
  // A customer's outbox entries, "<t> <m>" (and " <sc>" for da).
  std::vector<std::string> Outbox(const keys::CustomerKeys& ck) {
    std::vector<std::string> out;
    for (const redis::Reply& e : Run({"XRANGE", ck.outbox(), "-", "+"}).elements) {
      std::string t, m, sc;
      const auto& f = e.elements[1].elements;
      for (size_t i = 0; i + 1 < f.size(); i += 2) {
        if (f[i].str == "t") t = f[i + 1].str;
        if (f[i].str == "m") m = f[i + 1].str;
        if (f[i].str == "sc") sc = f[i + 1].str;
      }
      out.push_back(sc.empty() ? absl::StrCat(t, " ", m) : absl::StrCat(t, " ", m, " ", sc));
    }
    return out;
  }
  MergeSwap Swap(int64_t staged) {
    MergeSwap call;
    call.timeline = tk_.timeline();
    call.staging = tk_.merge_staging(kMerge);
    call.dedup = tk_.dedup();
    call.staging_dedup = tk_.merge_staging_dedup(kMerge);
    call.merge_state = tk_.merge_state();
    call.profile = tk_.profile();
    call.conversations = tk_.conversations();
    call.remap = tk_.remap();
    call.staging_remap = tk_.merge_staging_remap(kMerge);
    call.staging_engagement = tk_.merge_staging_engagement(kMerge);
    call.conversation_records = tk_.conversation_records();
    call.cases = tk_.cases();
    call.facts = tk_.facts();
    call.contacts = tk_.contacts();
    call.contact_channels = tk_.contact_channels();
    call.signals = tk_.signals();
    call.outbox = tk_.outbox();
    call.merge_id = kMerge;
    call.source_id = "cus_s";
    call.target_id = "cus_t";
    call.tenant = "acme";
    call.staged = staged;
    call.priors = "tier\t1\tsilver\tgold\n";
    call.counts = "1|0";
    // One profile field (tier), no open conversation.
    call.sets = {"1", "tier", "gold", "0"};
    return call;
  }
  MergeRestore Restore() {
    MergeRestore call;
    call.merge_state = sk_.merge_state();
    call.staging = sk_.merge_staging_engagement(kMerge);
    call.profile = sk_.profile();
    call.outbox = sk_.outbox();
    call.conversation_records = sk_.conversation_records();
    call.cases = sk_.cases();
    call.facts = sk_.facts();
    call.merge_id = kMerge;
    call.source_id = "cus_s";
    call.target_id = "cus_t";
    call.tenant = "acme";
    return call;
  }
  MergeRemove Remove() {
    MergeRemove call;
    call.merge_state = tk_.merge_state();
    call.profile = tk_.profile();
    call.conversations = tk_.conversations();
    call.staging = tk_.merge_staging_engagement(kMerge);
    call.conversation_records = tk_.conversation_records();
    call.cases = tk_.cases();
    call.facts = tk_.facts();
    call.contacts = tk_.contacts();
    call.contact_channels = tk_.contact_channels();
    call.signals = tk_.signals();
    call.merge_id = kMerge;
    // tier back to silver; act:1 recomputed; no open conversation.
    call.sets = {"1", "tier", "gold", "1", "silver", "1", "act:1", "5", "0"};
    return call;
  }
  // A case record as libs/engagement stores it (the fields the merge functions read).
  static std::string Case(const std::string& stage, const std::string& topic) {
    return absl::StrCat("{\"s\":\"o\",\"sg\":\"", stage, "\",\"se\":", kEntered, ",\"tp\":\"",
                        topic, "\"}");
  }
  // The case's member of the tenant's open-case index (libs/engagement/lua/journey.lua).
  static std::string Member(const std::string& stage, const std::string& customer,
                            const std::string& case_id) {
    return absl::StrFormat("%s|%015d|%s|%s", stage, kEntered, customer, case_id);
  }
  static std::string Due(const std::string& customer, const std::string& case_id) {
    return absl::StrCat("acme|", customer, "|", case_id);
  }
  void SeedEngagement() {
    Run({"HSET", tk_.profile(), "created_at", "1", "tier", "silver"});
    Run({"HSET", sk_.cases(), "case_1", Case("shipped", "the source's"), "case_2",
         Case("ordered", "only the source's")});
    Run({"HSET", tk_.cases(), "case_1", Case("delivered", "the target's")});
    Run({"ZADD", sk_.contact_channels(), "200", "3"});
    Run({"ZADD", tk_.contact_channels(), "100", "3"});
    Run({"HSET", sk_.signals(), "n:19675", "2", "streak", "2"});
  }

  const keys::CustomerKeys sk_{"acme", "cus_s"};
  const keys::CustomerKeys tk_{"acme", "cus_t"};
};

TEST_F(MergeFunctionsTest, LockIsRefusedOnAHeldOrMergedCustomerAndUnlockTakesOnlyItsOwn) {
  absl::StatusOr<redis::Reply> r = Call(Lock(sk_, "cus_s", "merge"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();

  Run({"HSET", sk_.profile(), "created_at", "1", "merge_lock", "mrg_other"});
  r = Call(Lock(sk_, "cus_s", "merge"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  EXPECT_NE(r.status().message().find("held by merge mrg_other"), absl::string_view::npos)
      << r.status();
  EXPECT_EQ(Run({"HGET", sk_.profile(), "merge_lock"}).str, "mrg_other");
  MergeUnlock unlock;
  unlock.profile = sk_.profile();
  unlock.lock = kMerge;
  r = Call(unlock);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"HGET", sk_.profile(), "merge_lock"}).str, "mrg_other");

  Run({"HDEL", sk_.profile(), "merge_lock"});
  Run({"HSET", sk_.profile(), "merged_into", "cus_x", "merge_id", "mrg_0"});
  r = Call(Lock(sk_, "cus_s", "merge"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  // Merged into cus_x, not by this merge into cus_t: no unmerge of it either.
  r = Call(Lock(sk_, "cus_s", "unmerge-source"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(Run({"HEXISTS", sk_.profile(), "merge_lock"}).integer, 0);

  // A free customer is locked, and locking again (a retry) is fine; unlock then releases it.
  Run({"HSET", tk_.profile(), "created_at", "1"});
  r = Call(Lock(tk_, "cus_t", "merge"));
  ASSERT_TRUE(r.ok()) << r.status();
  r = Call(Lock(tk_, "cus_t", "merge"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Run({"HGET", tk_.profile(), "merge_lock"}).str, kMerge);
  unlock.profile = tk_.profile();
  r = Call(unlock);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"HEXISTS", tk_.profile(), "merge_lock"}).integer, 0);
}

TEST_F(MergeFunctionsTest, SaveStepNeverGoesBackWithinAPhase) {
  MergeSaveStep save;
  save.record = keys::MergeKey("acme", kMerge);
  save.rec = "rec-at-4";
  save.step = 4;
  save.phase = "merge";
  save.now_ms = 1000;
  absl::StatusOr<redis::Reply> r = Call(save);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  save.rec = "rec-at-2";
  save.step = 2;  // a slower driver of the same merge
  r = Call(save);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"HGET", save.record, "rec"}).str, "rec-at-4");
  // The unmerge's steps start again from its own.
  save.rec = "rec-unmerge";
  save.step = 11;
  save.phase = "unmerge";
  r = Call(save);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"HGET", save.record, "step"}).str, "11");
  EXPECT_EQ(Run({"HGET", save.record, "updated_at"}).str, "1000");
}

TEST_F(MergeFunctionsTest, AStageChunkRetriedIsWrittenOnceAndNothingAfterTheSwap) {
  std::vector<std::string> chunk = {"1-1", "blob-a", "",     "10", "ev_a", "5-0",
                                    "1-2", "blob-b", kMerge, "11", "ev_b", "cus_s|7-0"};
  absl::StatusOr<redis::Reply> r = Call(Stage(chunk));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  r = Call(Stage(chunk));  // a retry, or a second driver
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Run({"XLEN", tk_.merge_staging(kMerge)}).integer, 2);
  EXPECT_EQ(Run({"HGET", tk_.merge_staging_dedup(kMerge), "ev_b"}).str, "1-2");
  EXPECT_EQ(Run({"HGET", tk_.merge_staging_remap(kMerge), "cus_s|7-0"}).str, "1-2");
  redis::Reply entry = Run({"XRANGE", tk_.merge_staging(kMerge), "1-2", "1-2"});
  ASSERT_EQ(entry.elements.size(), 1u);
  // 'e' blob, 'm' tags, 'a' appended ms.
  const auto& f = entry.elements[0].elements[1].elements;
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f[1].str, "blob-b");
  EXPECT_EQ(f[3].str, kMerge);
  EXPECT_EQ(f[5].str, "11");

  // A chunk overlapping what is there writes only the new entry.
  r = Call(Stage({"1-2", "blob-b", "", "11", "ev_b", "", "1-3", "blob-c", "", "12", "ev_c", ""}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Run({"XLEN", tk_.merge_staging(kMerge)}).integer, 3);

  // Remap entries carried forward: an entry already staged wins.
  MergeStageRemap remap;
  remap.staging_remap = tk_.merge_staging_remap(kMerge);
  remap.merge_state = tk_.merge_state();
  remap.merge_id = kMerge;
  remap.pairs = {"cus_s|7-0", "0-0", "3-0", "1-3"};
  r = Call(remap);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"HGET", tk_.merge_staging_remap(kMerge), "cus_s|7-0"}).str, "1-2");
  EXPECT_EQ(Run({"HGET", tk_.merge_staging_remap(kMerge), "3-0"}).str, "1-3");

  // Once swapped, neither writes.
  Run({"HSET", tk_.merge_state(), absl::StrCat(kMerge, ":swapped"), "3|0"});
  r = Call(Stage({"1-4", "blob-d", "", "13", "ev_d", ""}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, -1);
  EXPECT_EQ(Run({"XLEN", tk_.merge_staging(kMerge)}).integer, 3);
  remap.pairs = {"9-0", "1-1"};
  r = Call(remap);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, -1);
  EXPECT_EQ(Run({"HEXISTS", tk_.merge_staging_remap(kMerge), "9-0"}).integer, 0);
}

TEST_F(MergeFunctionsTest, AbandonDropsTheStagingAndTheLockUnlessSwapped) {
  Run({"HSET", tk_.profile(), "created_at", "1", "merge_lock", kMerge});
  ASSERT_TRUE(Call(Stage({"1-1", "blob-a", "", "10", "ev_a", "5-0"})).ok());
  ASSERT_TRUE(Call(StageEngagement(tk_, "swapped", "", {"ca|case_1", "{}"})).ok());
  MergeAbandon abandon;
  abandon.merge_state = tk_.merge_state();
  abandon.staging = tk_.merge_staging(kMerge);
  abandon.staging_dedup = tk_.merge_staging_dedup(kMerge);
  abandon.staging_remap = tk_.merge_staging_remap(kMerge);
  abandon.staging_engagement = tk_.merge_staging_engagement(kMerge);
  abandon.profile = tk_.profile();
  abandon.merge_id = kMerge;
  Run({"HSET", tk_.merge_state(), absl::StrCat(kMerge, ":swapped"), "1|0"});
  absl::StatusOr<redis::Reply> r = Call(abandon);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"EXISTS", tk_.merge_staging(kMerge)}).integer, 1);
  Run({"DEL", tk_.merge_state()});
  r = Call(abandon);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"EXISTS", tk_.merge_staging(kMerge), tk_.merge_staging_dedup(kMerge),
                 tk_.merge_staging_remap(kMerge), tk_.merge_staging_engagement(kMerge)})
                .integer,
            0);
  EXPECT_EQ(Run({"HEXISTS", tk_.profile(), "merge_lock"}).integer, 0);
}

TEST_F(MergeFunctionsTest, AStagedEngagementChunkIsWrittenOnceAndNothingOnceApplied) {
  std::vector<std::string> chunk = {"ca|case_2", Case("ordered", "x"), "du|case_2", "5"};
  absl::StatusOr<redis::Reply> r = Call(StageEngagement(tk_, "swapped", "", chunk));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 2);
  r = Call(StageEngagement(tk_, "swapped", "", chunk));  // a retry, or a second driver
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"HLEN", tk_.merge_staging_engagement(kMerge)}).integer, 2);
  // An unmerge copies only the records whose chain ends with its merge (due times all).
  r = Call(StageEngagement(
      sk_, "restored", kMerge,
      {"ca|a", absl::StrCat("{\"mg\":\"m0,", kMerge, "\"}"), "ca|b",
       absl::StrCat("{\"mg\":\"", kMerge, ",m2\"}"), "fa|c", "{}", "du|a", "7", "du|b", "8"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 3);
  EXPECT_EQ(Run({"HKEYS", sk_.merge_staging_engagement(kMerge)}).elements.size(), 3u);
  EXPECT_EQ(Run({"HEXISTS", sk_.merge_staging_engagement(kMerge), "ca|b"}).integer, 0);
  // Once applied (the marker set), nothing is written.
  Run({"HSET", tk_.merge_state(), absl::StrCat(kMerge, ":swapped"), "1|0"});
  r = Call(StageEngagement(tk_, "swapped", "", {"ca|case_9", "{}"}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, -1);
  EXPECT_EQ(Run({"HEXISTS", tk_.merge_staging_engagement(kMerge), "ca|case_9"}).integer, 0);
}

TEST_F(MergeFunctionsTest, SwapKeepsTheTargetsRecordOnAnIdClashAndMovesTheSourcesCase) {
  SeedEngagement();
  Run({"XADD", tk_.timeline(), "1-1", "e", "old"});
  ASSERT_TRUE(Call(Stage({"2-1", "blob-t", "", "10", "ev_t", "1-1", "2-2", "blob-s", kMerge, "11",
                          "ev_s", "cus_s|4-0"}))
                  .ok());
  ASSERT_TRUE(Call(StageEngagement(tk_, "swapped", "", SourceStaged())).ok());
  // Every key of the swap is in the target's slot.
  MergeSwap call = Swap(2);
  for (const std::string& key : call.ToKeys()) {
    EXPECT_EQ(redis::KeySlot(key), redis::KeySlot(tk_.profile())) << key;
  }

  // A staging stream shorter than planned: refused, nothing changed.
  absl::StatusOr<redis::Reply> r = Call(Swap(3));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(Run({"XLEN", tk_.timeline()}).integer, 1);

  r = Call(Swap(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "2-2");
  EXPECT_EQ(Run({"XLEN", tk_.timeline()}).integer, 2);
  EXPECT_EQ(Run({"EXISTS", tk_.merge_staging(kMerge)}).integer, 0);
  EXPECT_EQ(Run({"EXISTS", tk_.merge_staging_engagement(kMerge)}).integer, 0);
  EXPECT_EQ(Run({"HGET", tk_.dedup(), "ev_s"}).str, "2-2");
  EXPECT_EQ(Run({"HGET", tk_.remap(), "1-1"}).str, "2-1");
  EXPECT_EQ(Run({"HGET", tk_.profile(), "tier"}).str, "gold");

  // case_1: both have it, the target's stays. case_2: the source's, tagged with the merge.
  EXPECT_EQ(Run({"HGET", tk_.cases(), "case_1"}).str, Case("delivered", "the target's"));
  std::string moved = Run({"HGET", tk_.cases(), "case_2"}).str;
  EXPECT_NE(moved.find("only the source's"), std::string::npos) << moved;
  EXPECT_NE(moved.find(absl::StrCat("\"mg\":\"", kMerge, "\"")), std::string::npos) << moved;
  // Its journey entry and due promise move through the target's outbox (the old members name
  // the source); case_1 (the target's own) is not touched.
  EXPECT_EQ(Outbox(tk_), (std::vector<std::string>{
                             absl::StrCat("jr ", Member("ordered", "cus_s", "case_2")),
                             absl::StrCat("jo ", Member("ordered", "cus_t", "case_2")),
                             absl::StrCat("dr ", Due("cus_s", "case_2")),
                             absl::StrCat("da ", Due("cus_t", "case_2"), " 1700000900000")}));
  EXPECT_EQ(Run({"ZSCORE", tk_.contact_channels(), "3"}).str, "200");
  EXPECT_EQ(Run({"ZSCORE", tk_.contacts(), "conv_9"}).str, "150");
  EXPECT_EQ(Run({"HGET", tk_.signals(), "n:19675"}).str, "2");
  EXPECT_FALSE(Run({"HEXISTS", tk_.signals(), "streak"}).integer);

  // A second run finds the marker: the same head, nothing moved twice.
  r = Call(Swap(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->str, "2-2");
  EXPECT_EQ(Run({"HGET", tk_.signals(), "n:19675"}).str, "2");
  EXPECT_EQ(Outbox(tk_).size(), 4u);
  EXPECT_EQ(Run({"HGET", tk_.merge_state(), absl::StrCat(kMerge, ":swapped")}).str, "1|0");
}

TEST_F(MergeFunctionsTest, RestoreAndRemoveGiveTheCaseItsJourneyEntryAndPromiseBack) {
  SeedEngagement();
  ASSERT_TRUE(Call(Stage({"2-1", "blob-s", kMerge, "11", "ev_s", "cus_s|4-0"})).ok());
  ASSERT_TRUE(Call(StageEngagement(tk_, "swapped", "", SourceStaged())).ok());
  ASSERT_TRUE(Call(Swap(1)).ok());
  Run({"DEL", tk_.outbox()});
  // While merged, the case moved on through the target: it goes back as it is now.
  const std::string now = absl::StrCat("{\"s\":\"o\",\"sg\":\"shipped\",\"se\":", kEntered,
                                       ",\"tp\":\"only the source's\",\"mg\":\"", kMerge, "\"}");
  Run({"HSET", tk_.cases(), "case_2", now});

  // The return step's end, on the source: the records staged there (the unmerge copies the
  // target's, with the due times the index holds) become the source's.
  ASSERT_TRUE(Call(StageEngagement(sk_, "restored", kMerge,
                                   {"ca|case_1", Case("delivered", "the target's"), "ca|case_2",
                                    now, "du|case_2", "1700000900000"}))
                  .ok());
  MergeRestore restore = Restore();
  for (const std::string& key : restore.ToKeys()) {
    EXPECT_EQ(redis::KeySlot(key), redis::KeySlot(sk_.profile())) << key;
  }
  absl::StatusOr<redis::Reply> r = Call(restore);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  std::string back = Run({"HGET", sk_.cases(), "case_2"}).str;
  EXPECT_NE(back.find("\"sg\":\"shipped\""), std::string::npos) << back;
  EXPECT_EQ(back.find("\"mg\""), std::string::npos) << back;
  // The source's own case_1 is not the target's.
  EXPECT_EQ(Run({"HGET", sk_.cases(), "case_1"}).str, Case("shipped", "the source's"));
  EXPECT_EQ(Run({"EXISTS", sk_.merge_staging_engagement(kMerge)}).integer, 0);
  EXPECT_EQ(Outbox(sk_), (std::vector<std::string>{
                             absl::StrCat("jr ", Member("shipped", "cus_t", "case_2")),
                             absl::StrCat("jo ", Member("shipped", "cus_s", "case_2")),
                             absl::StrCat("dr ", Due("cus_t", "case_2")),
                             absl::StrCat("da ", Due("cus_s", "case_2"), " 1700000900000")}));
  r = Call(restore);  // a second run does nothing
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Outbox(sk_).size(), 4u);

  // The remove step's end, on the target, with the source's contacts and counts staged there.
  ASSERT_TRUE(
      Call(StageEngagement(tk_, "unmerged", "", {"ct|conv_9", "150", "sg|n:19675", "2"})).ok());
  r = Call(Remove());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"HEXISTS", tk_.cases(), "case_2"}).integer, 0);
  // The target's own case, profile value and contact channel come back as they were.
  EXPECT_EQ(Run({"HGET", tk_.cases(), "case_1"}).str, Case("delivered", "the target's"));
  EXPECT_EQ(Run({"HGET", tk_.profile(), "tier"}).str, "silver");
  EXPECT_EQ(Run({"HGET", tk_.profile(), "act:1"}).str, "5");
  EXPECT_EQ(Run({"ZSCORE", tk_.contact_channels(), "3"}).str, "100");
  EXPECT_EQ(Run({"EXISTS", tk_.contacts()}).integer, 0);
  EXPECT_EQ(Run({"HEXISTS", tk_.signals(), "n:19675"}).integer, 0);
  EXPECT_EQ(Run({"EXISTS", tk_.merge_staging_engagement(kMerge), tk_.outbox()}).integer, 0);

  // A second run does nothing.
  Run({"HSET", tk_.profile(), "tier", "gold"});
  r = Call(Remove());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"HGET", tk_.profile(), "tier"}).str, "gold");
}

TEST_F(MergeFunctionsTest, ReturnGivesBackWhatTheSourceLacksAndRemoveChunkDeletesIt) {
  // The source still has ev_1; ev_2 was appended through its id while merged (tagged m0,mrg_1).
  Run({"XADD", sk_.timeline(), "1-1", "e", "blob-1"});
  Run({"HSET", sk_.dedup(), "ev_1", "1-1"});
  MergeReturn give_back;
  give_back.timeline = sk_.timeline();
  give_back.dedup = sk_.dedup();
  give_back.events = {"ev_1", "blob-1", "100", "", "ev_2", "blob-2", "200", "m0"};
  absl::StatusOr<redis::Reply> r = Call(give_back);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  r = Call(give_back);  // a rerun appends nothing
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"XLEN", sk_.timeline()}).integer, 2);
  std::string sid = Run({"HGET", sk_.dedup(), "ev_2"}).str;
  redis::Reply entry = Run({"XRANGE", sk_.timeline(), sid, sid});
  ASSERT_EQ(entry.elements.size(), 1u);
  const auto& f = entry.elements[0].elements[1].elements;
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f[1].str, "blob-2");
  EXPECT_EQ(f[3].str, "200");
  EXPECT_EQ(f[5].str, "m0");

  // The target deletes them (its dedup entry only where it still points at that entry).
  Run({"XADD", tk_.timeline(), "2-1", "e", "blob-1"});
  Run({"XADD", tk_.timeline(), "2-2", "e", "blob-2"});
  Run({"XADD", tk_.timeline(), "2-3", "e", "blob-own"});
  Run({"HSET", tk_.dedup(), "ev_1", "2-1", "ev_2", "9-9", "ev_own", "2-3"});
  MergeRemoveChunk chunk;
  chunk.timeline = tk_.timeline();
  chunk.dedup = tk_.dedup();
  chunk.merge_state = tk_.merge_state();
  chunk.merge_id = kMerge;
  chunk.pairs = {"2-1", "ev_1", "2-2", "ev_2"};
  r = Call(chunk);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"XLEN", tk_.timeline()}).integer, 1);
  EXPECT_EQ(Run({"HEXISTS", tk_.dedup(), "ev_1"}).integer, 0);
  EXPECT_EQ(Run({"HGET", tk_.dedup(), "ev_2"}).str, "9-9");
  // After the remove step finished, nothing is deleted.
  Run({"HSET", tk_.merge_state(), absl::StrCat(kMerge, ":unmerged"), "1"});
  chunk.pairs = {"2-3", "ev_own"};
  r = Call(chunk);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"XLEN", tk_.timeline()}).integer, 1);
}

TEST_F(MergeFunctionsTest, IdentifiersMoveByCompareAndSetAndAreAddedWhereAbsent) {
  const std::string index = keys::IdentifierKey("acme", v1::IDENTIFIER_TYPE_PHONE, "14155550100");
  MergeMoveIndex move;
  move.index = index;
  move.new_owner = "cus_t";
  move.old_owner = "cus_s";
  Run({"SET", index, "cus_other"});  // relinked to someone else meanwhile: left alone
  absl::StatusOr<redis::Reply> r = Call(move);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"GET", index}).str, "cus_other");
  Run({"SET", index, "cus_s"});
  r = Call(move);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(Run({"GET", index}).str, "cus_t");
  r = Call(move);  // a rerun
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);

  Run({"HSET", tk_.identifiers(), "email:a@example.com", "own"});
  MergeAddIdentifiers add;
  add.identifiers = tk_.identifiers();
  add.pairs = {"email:a@example.com", "moved", "phone:14155550100", "moved"};
  r = Call(add);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Run({"HGET", tk_.identifiers(), "email:a@example.com"}).str, "own");
  EXPECT_EQ(Run({"HGET", tk_.identifiers(), "phone:14155550100"}).str, "moved");
}

TEST_F(MergeFunctionsTest, MarkNeedsTheLockAndReleaseSourceUndoesIt) {
  Run({"HSET", sk_.profile(), "created_at", "1", "act:1", "7"});
  MergeMark mark;
  mark.profile = sk_.profile();
  mark.target_id = "cus_t";
  mark.merge_id = kMerge;
  mark.head = "2-2";
  mark.notify_channel = sk_.channel();
  absl::StatusOr<redis::Reply> r = Call(mark);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(Run({"HEXISTS", sk_.profile(), "merged_into"}).integer, 0);

  Run({"HSET", sk_.profile(), "merge_lock", kMerge});
  r = Call(mark);
  ASSERT_TRUE(r.ok()) << r.status();
  r = Call(mark);  // a rerun: marked by this merge already
  ASSERT_TRUE(r.ok()) << r.status();
  redis::Reply g =
      Run({"HMGET", sk_.profile(), "merged_into", "merge_id", "merged_head", "merge_lock"});
  EXPECT_EQ(g.elements[0].str, "cus_t");
  EXPECT_EQ(g.elements[1].str, kMerge);
  EXPECT_EQ(g.elements[2].str, "2-2");
  EXPECT_TRUE(g.elements[3].is_nil());

  // Released only by the unmerge holding the lock.
  MergeReleaseSource release;
  release.profile = sk_.profile();
  release.conversations = sk_.conversations();
  release.lock = kMerge;
  release.sets = {"1", "act:2", "9", "1", "conv_a", "1|2|3|2"};
  r = Call(release);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(Run({"HGET", sk_.profile(), "merged_into"}).str, "cus_t");
  Run({"HSET", sk_.profile(), "merge_lock", kMerge});
  r = Call(release);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  g = Run({"HMGET", sk_.profile(), "merged_into", "merge_id", "merged_head", "merge_lock", "act:1",
           "act:2", "created_at"});
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(g.elements[i].is_nil()) << i;
  EXPECT_EQ(g.elements[5].str, "9");
  EXPECT_EQ(g.elements[6].str, "1");
  EXPECT_EQ(Run({"HGET", sk_.conversations(), "conv_a"}).str, "1|2|3|2");

  // The target's lock: released by its holder only; the watchers are told either way.
  Run({"HSET", tk_.profile(), "created_at", "1", "merge_lock", "mrg_other"});
  MergeReleaseNotify done;
  done.profile = tk_.profile();
  done.lock = kMerge;
  done.notify_channel = tk_.channel();
  done.message = "merged";
  ASSERT_TRUE(Call(done).ok());
  EXPECT_EQ(Run({"HGET", tk_.profile(), "merge_lock"}).str, "mrg_other");
  Run({"HSET", tk_.profile(), "merge_lock", kMerge});
  ASSERT_TRUE(Call(done).ok());
  EXPECT_EQ(Run({"HEXISTS", tk_.profile(), "merge_lock"}).integer, 0);
}

}  // namespace
}  // namespace onestory::lua
