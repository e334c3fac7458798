// The test environment of the function tests: starts their redis-server and watches it with
// MONITOR. When the tests end, each command a function ran (MONITOR's "[0 lua]" lines, which
// follow the FCALL that ran them) is asked for its keys with COMMAND GETKEYS, and every key must
// be one the FCALL declared. Every function of the library must have been called at least once,
// so a function added without tests fails here too.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "libs/lua/library.h"
#include "tests/integration/lua/function_test.h"

namespace onestory::testing {
namespace {

RedisForTest* g_redis = nullptr;

// The quoted words of a MONITOR line ("\"SET\" \"k\\\"x\""), unescaped as Redis escaped them.
std::vector<std::string> MonitorWords(absl::string_view line) {
  std::vector<std::string> words;
  size_t i = line.find('"');
  while (i != absl::string_view::npos && i < line.size()) {
    std::string w;
    ++i;
    while (i < line.size() && line[i] != '"') {
      char c = line[i];
      if (c == '\\' && i + 1 < line.size()) {
        char n = line[++i];
        switch (n) {
          case 'n':
            w += '\n';
            break;
          case 'r':
            w += '\r';
            break;
          case 't':
            w += '\t';
            break;
          case 'a':
            w += '\a';
            break;
          case 'b':
            w += '\b';
            break;
          case 'x': {
            int v = 0;
            absl::SimpleHexAtoi(line.substr(i + 1, 2), &v);
            w += static_cast<char>(v);
            i += 2;
            break;
          }
          default:
            w += n;
        }
      } else {
        w += c;
      }
      ++i;
    }
    words.push_back(std::move(w));
    i = line.find('"', i + 1);
  }
  return words;
}

class KeyAudit : public ::testing::Environment {
 public:
  void SetUp() override {
    g_redis = new RedisForTest();
    monitor_ = redisConnect("127.0.0.1", g_redis->port());
    ASSERT_TRUE(monitor_ != nullptr && !monitor_->err);
    auto* ok = static_cast<redisReply*>(redisCommand(monitor_, "MONITOR"));
    ASSERT_TRUE(ok != nullptr);
    freeReplyObject(ok);
    reader_ = std::thread([this] {
      void* reply = nullptr;
      while (redisGetReply(monitor_, &reply) == REDIS_OK && reply != nullptr) {
        auto* r = static_cast<redisReply*>(reply);
        if (r->type == REDIS_REPLY_STATUS) {
          std::string line(r->str, r->len);
          absl::MutexLock l(&mu_);
          lines_.push_back(std::move(line));
        }
        freeReplyObject(r);
      }
    });
  }

  void TearDown() override {
    // The server goes first: the MONITOR connection then ends and the reader with it.
    Check();
    delete g_redis;
    g_redis = nullptr;
    reader_.join();
    redisFree(monitor_);
  }

 private:
  void Check() {
    // Lines seen so far; the last commands' lines arrive within moments.
    g_redis->Run({"PING"});
    absl::SleepFor(absl::Milliseconds(200));
    std::vector<std::string> lines;
    {
      absl::MutexLock l(&mu_);
      lines = lines_;
    }
    const std::string suffix = absl::StrCat("_", lua::kLibrary.version);
    std::set<std::string> called;
    std::string function;            // the FCALL the lua lines belong to
    std::set<std::string> declared;  // its keys
    int checked = 0;
    for (const std::string& line : lines) {
      std::vector<std::string> w = MonitorWords(line);
      if (w.empty()) continue;
      const bool from_lua = absl::StrContains(line, "[0 lua]");
      if (!from_lua) {
        function.clear();
        declared.clear();
        if ((w[0] == "FCALL" || w[0] == "FCALL_RO") && w.size() >= 3 &&
            absl::EndsWith(w[1], suffix)) {
          function = w[1].substr(0, w[1].size() - suffix.size());
          called.insert(function);
          size_t n = 0;
          absl::SimpleAtoi(w[2], &n);
          for (size_t k = 0; k < n && 3 + k < w.size(); ++k) declared.insert(w[3 + k]);
        }
        continue;
      }
      if (function.empty()) continue;  // an EVAL script's commands: not a function's
      std::vector<std::string> getkeys = {"COMMAND", "GETKEYS"};
      getkeys.insert(getkeys.end(), w.begin(), w.end());
      redis::Reply keys = g_redis->Run(getkeys);
      ++checked;
      if (keys.type == redis::Reply::Type::kError) {
        EXPECT_TRUE(absl::StrContains(keys.str, "no key arguments"))
            << function << ": COMMAND GETKEYS " << absl::StrJoin(w, " ") << ": " << keys.str;
        continue;
      }
      for (const redis::Reply& k : keys.elements) {
        EXPECT_TRUE(declared.contains(k.str))
            << function << " touched key " << k.str
            << " it did not declare (in: " << absl::StrJoin(w, " ")
            << "; declared: " << absl::StrJoin(declared, " ") << ")";
      }
    }
    EXPECT_GT(checked, 0) << "MONITOR saw no command run by a function";
    // Every function of the library was called by some test.
    redis::Reply list =
        g_redis->Run({"FUNCTION", "LIST", "LIBRARYNAME", std::string(lua::kLibrary.name)});
    ASSERT_EQ(list.elements.size(), 1u);
    const redis::Reply& lib = list.elements[0];
    for (size_t i = 0; i + 1 < lib.elements.size(); i += 2) {
      if (lib.elements[i].str != "functions") continue;
      for (const redis::Reply& fn : lib.elements[i + 1].elements) {
        std::string name = fn.elements.size() > 1 ? fn.elements[1].str : "";
        name = name.substr(0, name.size() - suffix.size());
        EXPECT_TRUE(called.contains(name)) << "no test called function " << name;
      }
    }
  }

  redisContext* monitor_ = nullptr;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

[[maybe_unused]] ::testing::Environment* const kKeyAudit =
    ::testing::AddGlobalTestEnvironment(new KeyAudit);

}  // namespace

RedisForTest* FunctionTestRedis() { return g_redis; }

}  // namespace onestory::testing
