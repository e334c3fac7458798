// RedisForTest: a real redis-server for one test binary, started on a free TCP port (and a unix
// socket) in a fresh temporary directory, with helpers to look at and reset its data.
//
//   class MyTest : public ::testing::Test {
//     static void SetUpTestSuite() { redis_ = new RedisForTest(); }
//     ...
//   };
//   auto snapshot = redis->Snapshot();   // every key and its DUMP, to prove nothing changed
//   redis->FlushAll();
//   redis->Kill(); redis->Restart();     // fault tests
//
// OneStory's Redis function library is loaded when the server starts (LoadFunctions).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libs/embedded/embedded_redis.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"

namespace onestory::testing {

class RedisForTest {
 public:
  // appendfsync: "everysec" (default) or "always" for the durability tests.
  explicit RedisForTest(const std::string& appendfsync = "everysec");
  ~RedisForTest();

  std::string address() const { return server_->tcp_address(); }  // "127.0.0.1:<port>"
  int port() const { return server_->options().port; }
  std::string data_dir() const { return server_->options().data_dir; }

  // Runs one command on a private synchronous connection; fails the test on a transport error.
  redis::Reply Run(const std::vector<std::string>& argv);

  // Every key with its DUMP serialization, sorted by key; the audit logs (every bucket's,
  // os:{<t>:au:<bucket>}:log, and os:{<t>:au}:log of the layout before) left out: they record
  // refused calls too.
  // Every key and its DUMP, once the effects calls left in outboxes are applied (libs/outbox:
  // they are applied right after the call answers).
  std::map<std::string, std::string> Snapshot();
  // Waits until no outbox is marked pending: every effect of the calls answered so far is
  // applied. False when some still are after 10 s.
  bool AwaitOutboxesDrained();
  void FlushAll();
  // FUNCTION LOAD of OneStory's function library (lua::kLibrary), as a server does at start-up;
  // done when the server starts. (FLUSHALL keeps functions; FUNCTION FLUSH removes them.)
  void LoadFunctions();

  void Kill();     // SIGKILL; no flush
  void Restart();  // on the same port and directory

  redis::Options ClientOptions() const;

 private:
  std::unique_ptr<embedded::EmbeddedRedis> server_;
};

// A TCP port that was free a moment ago.
int PickFreePort();
// A new empty directory under $TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

}  // namespace onestory::testing
