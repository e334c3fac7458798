// The Redis Function library against a real redis-server: FUNCTION LOAD at start-up (again is
// fine), FCALL_RO for read-only functions, surviving a FUNCTION FLUSH (load and retry once),
// a library Redis refuses failing with the file and line at fault, and Lua errors named by file
// and line.
#include "libs/redis/function_library.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/lua/identity_get_profile.h"
#include "libs/lua/library.h"
#include "libs/lua/retention_forget.h"
#include "libs/redis/client.h"
#include "tests/testing/await.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::redis {
namespace {

using onestory::testing::Await;
using onestory::testing::Deadline;
using onestory::testing::RedisForTest;

// A library of one function, "<name>_v1", whose code is `body` (file libs/test/lua/<name>.lua).
struct HandMade {
  HandMade(const std::string& library, const std::string& name, const std::string& body)
      : library_name(library),
        path(absl::StrCat("libs/test/lua/", name, ".lua")),
        code(absl::StrCat("#!lua name=", library, "\n", "redis.register_function{function_name = '",
                          name, "_v1', callback = function(KEYS, ARGV)\n", body, "end}\n")),
        sources{FunctionLibrary::Source{
            path, 3, static_cast<int>(std::count(body.begin(), body.end(), '\n'))}},
        lib{library_name, "v1", code, sources} {}
  std::string library_name;
  std::string path;
  std::string code;
  FunctionLibrary::Source sources[1];
  FunctionLibrary lib;
};

class FunctionLibraryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { redis_ = new RedisForTest(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    redis_->Run({"FUNCTION", "FLUSH"});
    redis_->FlushAll();
    client_ = std::make_unique<Client>(redis_->ClientOptions());
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!client_->connected() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(10));
  }

  absl::StatusOr<Reply> Call(const Function& f, std::vector<std::string> keys,
                             std::vector<std::string> args) {
    return Await<Reply>([&](Callback<Reply> done) {
      client_->Fcall(f, std::move(keys), std::move(args), Deadline(), std::move(done));
    });
  }
  template <typename CallT>
  absl::StatusOr<Reply> Call(const CallT& call) {
    return Call(CallT::kFunction, call.ToKeys(), call.ToArgv());
  }

  // calls=<n> of one INFO commandstats line ("cmdstat_fcall_ro"), 0 when absent.
  int64_t CommandCalls(const std::string& stat) {
    Reply info = redis_->Run({"INFO", "commandstats"});
    for (absl::string_view line : absl::StrSplit(info.str, "\r\n")) {
      if (!absl::StartsWith(line, absl::StrCat(stat, ":calls="))) continue;
      absl::string_view rest = line.substr(stat.size() + 7);
      int64_t n = 0;
      EXPECT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find(',')), &n)) << line;
      return n;
    }
    return 0;
  }
  std::vector<std::string> LoadedFunctions() {
    std::vector<std::string> names;
    Reply list = redis_->Run({"FUNCTION", "LIST", "LIBRARYNAME", std::string(lua::kLibrary.name)});
    for (const Reply& lib : list.elements) {
      for (size_t i = 0; i + 1 < lib.elements.size(); i += 2) {
        if (lib.elements[i].str != "functions") continue;
        for (const Reply& fn : lib.elements[i + 1].elements) {
          std::string name = fn.elements[1].str;
          for (size_t j = 0; j + 1 < fn.elements.size(); j += 2) {
            if (fn.elements[j].str != "flags") continue;
            for (const Reply& flag : fn.elements[j + 1].elements)
              absl::StrAppend(&name, " ", flag.str);
          }
          names.push_back(name);
        }
      }
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // Every function of the library, as LoadedFunctions() lists them (sorted, with their flags).
  static std::vector<std::string> ExpectedFunctions() {
    const std::string v = std::string(lua::kLibrary.version);
    // One a line, so a new function is one added line; sorted by name here, and again below:
    // where a name begins with another one and "_" ("merge_remove", "merge_remove_chunk"), the
    // order of the two depends on the version that follows.
    std::vector<std::string> names = {
        absl::StrCat("audit_list_", v, " no-writes"),
        absl::StrCat("audit_upgrade_", v),
        absl::StrCat("engagement_alert_ack_", v),
        absl::StrCat("engagement_alert_list_", v, " no-writes"),
        absl::StrCat("engagement_alert_promise_", v),
        absl::StrCat("engagement_alert_read_", v, " no-writes"),
        absl::StrCat("engagement_alert_upgrade_", v),
        absl::StrCat("engagement_bucket_upgrade_", v),
        absl::StrCat("engagement_case_get_", v, " no-writes"),
        absl::StrCat("engagement_case_open_", v),
        absl::StrCat("engagement_case_resolve_", v),
        absl::StrCat("engagement_case_update_", v),
        absl::StrCat("engagement_conversation_end_", v),
        absl::StrCat("engagement_conversation_facts_", v),
        absl::StrCat("engagement_conversation_handoff_", v),
        absl::StrCat("engagement_conversation_start_", v),
        absl::StrCat("engagement_journey_rank_", v, " no-writes"),
        absl::StrCat("engagement_journey_set_", v),
        absl::StrCat("engagement_journey_stats_", v, " no-writes"),
        absl::StrCat("engagement_journey_upgrade_", v),
        absl::StrCat("identity_check_", v, " no-writes"),
        absl::StrCat("identity_claim_over_", v),
        absl::StrCat("identity_create_", v),
        absl::StrCat("identity_get_profile_", v, " no-writes"),
        absl::StrCat("identity_link_precheck_", v, " no-writes"),
        absl::StrCat("identity_reclaim_", v),
        absl::StrCat("identity_record_link_", v),
        absl::StrCat("identity_unclaim_", v),
        absl::StrCat("identity_unlink_", v),
        absl::StrCat("identity_update_profile_", v),
        absl::StrCat("merge_abandon_", v),
        absl::StrCat("merge_add_identifiers_", v),
        absl::StrCat("merge_lock_", v),
        absl::StrCat("merge_mark_", v),
        absl::StrCat("merge_move_index_", v),
        absl::StrCat("merge_release_notify_", v),
        absl::StrCat("merge_release_source_", v),
        absl::StrCat("merge_remove_", v),
        absl::StrCat("merge_remove_chunk_", v),
        absl::StrCat("merge_restore_", v),
        absl::StrCat("merge_return_", v),
        absl::StrCat("merge_save_step_", v),
        absl::StrCat("merge_stage_", v),
        absl::StrCat("merge_stage_engagement_", v),
        absl::StrCat("merge_stage_remap_", v),
        absl::StrCat("merge_swap_", v),
        absl::StrCat("merge_unlock_", v),
        absl::StrCat("outbox_activity_", v),
        absl::StrCat("outbox_alerts_", v),
        absl::StrCat("outbox_delete_", v),
        absl::StrCat("outbox_due_", v),
        absl::StrCat("outbox_journey_", v),
        absl::StrCat("outbox_unmark_", v),
        absl::StrCat("privacy_drop_alert_ids_", v),
        absl::StrCat("privacy_drop_alert_log_", v),
        absl::StrCat("privacy_drop_index_", v),
        absl::StrCat("privacy_drop_journey_", v),
        absl::StrCat("privacy_drop_keys_", v),
        absl::StrCat("privacy_drop_pending_redaction_", v),
        absl::StrCat("privacy_export_range_", v, " no-writes"),
        absl::StrCat("privacy_export_read_", v, " no-writes"),
        absl::StrCat("privacy_read_customer_", v, " no-writes"),
        absl::StrCat("privacy_redact_begin_", v),
        absl::StrCat("privacy_redact_chunk_", v),
        absl::StrCat("privacy_redact_end_", v),
        absl::StrCat("privacy_redact_read_", v, " no-writes"),
        absl::StrCat("privacy_redact_records_", v),
        absl::StrCat("privacy_redact_swap_", v),
        absl::StrCat("privacy_release_pending_", v),
        absl::StrCat("privacy_tombstone_root_", v),
        absl::StrCat("privacy_tombstone_source_", v),
        absl::StrCat("retention_forget_", v),
        absl::StrCat("retention_sweep_", v),
        absl::StrCat("timeline_append_", v),
        absl::StrCat("timeline_range_", v, " no-writes"),
    };
    std::sort(names.begin(), names.end());
    return names;
  }

  static inline RedisForTest* redis_ = nullptr;
  std::unique_ptr<Client> client_;
};

TEST_F(FunctionLibraryTest, LoadsEveryFunctionVersionedAndLoadingAgainIsFine) {
  ASSERT_TRUE(LoadLibrary(client_.get(), lua::kLibrary).ok());
  ASSERT_TRUE(LoadLibrary(client_.get(), lua::kLibrary).ok());  // another server starting
  EXPECT_TRUE(absl::StartsWith(lua::kLibrary.name, "onestory_"));
  const std::string v = std::string(lua::kLibrary.version);
  EXPECT_EQ(lua::kLibrary.name, absl::StrCat("onestory_", v));
  EXPECT_EQ(LoadedFunctions(), ExpectedFunctions());
}

TEST_F(FunctionLibraryTest, ReadOnlyFunctionsAreCalledWithFcallRo) {
  ASSERT_TRUE(LoadLibrary(client_.get(), lua::kLibrary).ok());
  redis_->Run({"CONFIG", "RESETSTAT"});
  lua::IdentityGetProfile get;
  get.profile = "os:{acme:c:cus_1}:p";
  get.identifiers = "os:{acme:c:cus_1}:ids";
  get.customer_id = "cus_1";
  EXPECT_EQ(Call(get).status().code(), absl::StatusCode::kNotFound);
  lua::RetentionForget forget;
  forget.index = "os:{acme:r}:active";
  EXPECT_TRUE(Call(forget).ok());
  EXPECT_EQ(CommandCalls("cmdstat_fcall_ro"), 1);
  EXPECT_EQ(CommandCalls("cmdstat_fcall"), 1);
}

TEST_F(FunctionLibraryTest, AFunctionFlushBetweenCallsIsSurvived) {
  ASSERT_TRUE(LoadLibrary(client_.get(), lua::kLibrary).ok());
  const std::string index = "os:{acme:r}:active";
  redis_->Run({"ZADD", index, "1", "cus_a", "2", "cus_b"});
  lua::RetentionForget forget;
  forget.index = index;
  forget.members = {"cus_a", "1"};
  absl::StatusOr<Reply> r = Call(forget);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);

  redis_->Run({"FUNCTION", "FLUSH"});  // or a Redis restarted without persistence
  redis_->Run({"CONFIG", "RESETSTAT"});
  forget.members = {"cus_b", "2"};
  r = Call(forget);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 1);
  EXPECT_EQ(redis_->Run({"ZCARD", index}).integer, 0);
  // One FCALL refused, one FUNCTION LOAD, one FCALL again.
  EXPECT_EQ(CommandCalls("cmdstat_function|load"), 1);
  EXPECT_EQ(CommandCalls("cmdstat_fcall"), 2);
  EXPECT_EQ(LoadedFunctions(), ExpectedFunctions());
}

TEST_F(FunctionLibraryTest, NeverLoadedIsLoadedByTheFirstCall) {
  lua::RetentionForget forget;
  forget.index = "os:{acme:r}:active";
  absl::StatusOr<Reply> r = Call(forget);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->integer, 0);
  EXPECT_EQ(LoadedFunctions(), ExpectedFunctions());
}

TEST_F(FunctionLibraryTest, ABrokenLibraryFailsTheLoadNamingFileAndLine) {
  HandMade broken("onestory_broken", "broken", "local a = 1\nlocal b = = 2\nreturn a\n");
  absl::Status st = LoadLibrary(client_.get(), broken.lib);
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "onestory_broken")) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "libs/test/lua/broken.lua:2")) << st;
  // A call of one of its functions fails the same way (and nothing was loaded).
  st = Call(Function{&broken.lib, "broken", false}, {}, {}).status();
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "libs/test/lua/broken.lua:2")) << st;
  EXPECT_TRUE(redis_->Run({"FUNCTION", "LIST"}).elements.empty());
}

TEST_F(FunctionLibraryTest, ALuaErrorAtRunTimeNamesFileAndLine) {
  HandMade boom("onestory_boom", "boom", "local x = nil\nreturn x + 1\n");
  absl::Status st = Call(Function{&boom.lib, "boom", false}, {}, {}).status();
  ASSERT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "libs/test/lua/boom.lua:2")) << st;
}

TEST_F(FunctionLibraryTest, AFunctionNameAnotherLibraryHoldsIsRefused) {
  ASSERT_TRUE(LoadLibrary(client_.get(), lua::kLibrary).ok());
  // The same function name under another library name.
  std::string code = absl::StrCat("#!lua name=onestory_clash\nredis.register_function('",
                                  lua::kLibrary.RegisteredName("identity_get_profile"),
                                  "', function() return 1 end)\n");
  FunctionLibrary other{"onestory_clash", "x", code, {}};
  absl::Status st = LoadLibrary(client_.get(), other);
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "already exists")) << st;
}

}  // namespace
}  // namespace onestory::redis
