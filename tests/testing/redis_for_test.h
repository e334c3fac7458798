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
//
// With ONESTORY_TEST_REDIS=cluster in the environment it is a local Redis Cluster instead
// (RedisClusterForTest: 3 primaries, 3 replicas), so a suite written for one Redis runs on a
// cluster unchanged (ctest registers such suites twice: onestory_cc_test(... CLUSTER)):
// ClientOptions() name every node as a seed, Run() sends a command with keys to its slot's
// primary (keys of one slot only), and KEYS, FLUSHALL, FUNCTION and CONFIG to every primary
// (KEYS answers them all); Snapshot() and FlushAll() cover every primary. Kill and Restart are
// single-Redis only: a fault test calls GTEST_SKIP when cluster() is true.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libs/embedded/embedded_redis.h"
#include "libs/redis/client.h"
#include "libs/redis/reply.h"
#include "libs/redis/tls.h"

namespace onestory::testing {

class RedisClusterForTest;

class RedisForTest {
 public:
  // appendfsync: "everysec" (default) or "always" for the durability tests.
  explicit RedisForTest(const std::string& appendfsync = "everysec");
  ~RedisForTest();

  // True when ONESTORY_TEST_REDIS=cluster made this a cluster.
  bool cluster() const { return cluster_ != nullptr; }
  // The single Redis's; on a cluster, those of one of its primaries.
  std::string address() const;  // "127.0.0.1:<port>"
  int port() const;
  std::string data_dir() const;

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
  std::unique_ptr<embedded::EmbeddedRedis> server_;  // a single Redis
  std::unique_ptr<RedisClusterForTest> cluster_;     // or a cluster
};

// Runs one command on a private synchronous connection to 127.0.0.1:port (AUTH first with a
// password); a transport error fails the test and returns an error Reply.
redis::Reply RunOnPort(int port, const std::vector<std::string>& argv,
                       const std::string& password = "");
// A TCP port that was free a moment ago.
int PickFreePort();

// Certificates for TLS tests, made with the openssl command line in a new directory (returned):
// ca.crt (a test CA), redis.crt / redis.key (signed by it, naming IP 127.0.0.1 and DNS
// redis.test; a Redis's, also its client certificate on the cluster bus), client.crt /
// client.key (signed by it), other-ca.crt (a CA that signed none of them).
std::string MakeTlsFiles();
// The redis-server arguments that serve TLS on tls_port with MakeTlsFiles's files (clients need
// no certificate).
std::vector<std::string> TlsServerArgs(const std::string& tls_dir, int tls_port);
// A TLS context trusting MakeTlsFiles's CA, as a client of TlsServerArgs's Redis.
std::shared_ptr<const redis::TlsContext> TestTlsContext(const std::string& tls_dir);
// A new empty directory under $TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

}  // namespace onestory::testing
