#include "tests/testing/redis_for_test.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/library.h"
#include "libs/redis/command_keys.h"
#include "libs/redis/function_library.h"
#include "tests/testing/redis_cluster_for_test.h"

namespace onestory::testing {

redis::Reply RunOnPort(int port, const std::vector<std::string>& argv,
                       const std::string& password) {
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, {2, 0});
  if (c == nullptr || c->err) {
    ADD_FAILURE() << "cannot connect to test redis at port " << port;
    if (c) redisFree(c);
    redis::Reply err;
    err.type = redis::Reply::Type::kError;
    err.str = "ERR not connected";
    return err;
  }
  if (!password.empty()) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password.c_str()));
    if (r) freeReplyObject(r);
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
  redis::Reply out = redis::Reply::FromHiredis(r);
  if (r) freeReplyObject(r);
  redisFree(c);
  return out;
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string MakeTlsFiles() {
  std::string dir = MakeTempDir("onestory-tls-");
  // EC keys: quick to make. Two days of validity is plenty for a test run.
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::string script = absl::StrCat(
      "cd '", dir, "' && (printf 'subjectAltName=IP:127.0.0.1,DNS:redis.test\\n' > san.ext && ",
      "openssl req -x509 ", key,
      " -keyout ca.key -out ca.crt -days 2 -subj /CN=onestory-test-ca && ", "openssl req ", key,
      " -keyout redis.key -out redis.csr -subj /CN=redis.test && ",
      "openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out redis.crt ",
      "-days 2 -extfile san.ext && ", "openssl req ", key,
      " -keyout client.key -out client.csr -subj /CN=onestory-client && ",
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt ",
      "-days 2 && ", "openssl req -x509 ", key,
      " -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other ", ") > openssl.log 2>&1");
  if (std::system(script.c_str()) != 0) ADD_FAILURE() << "openssl failed; see " << dir;
  return dir;
}

std::vector<std::string> TlsServerArgs(const std::string& tls_dir, int tls_port) {
  return {"--tls-port",         absl::StrCat(tls_port),
          "--tls-cert-file",    tls_dir + "/redis.crt",
          "--tls-key-file",     tls_dir + "/redis.key",
          "--tls-ca-cert-file", tls_dir + "/ca.crt",
          "--tls-auth-clients", "no"};
}

std::shared_ptr<const redis::TlsContext> TestTlsContext(const std::string& tls_dir) {
  absl::StatusOr<std::shared_ptr<const redis::TlsContext>> tls =
      redis::TlsContext::Create({.ca_file = tls_dir + "/ca.crt"});
  if (!tls.ok()) ADD_FAILURE() << tls.status();
  return tls.ok() ? *tls : nullptr;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/", prefix, "XXXXXX");
  char* dir = mkdtemp(tmpl.data());
  if (dir == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return tmpl;
}

namespace {

bool OnCluster() {
  const char* mode = std::getenv("ONESTORY_TEST_REDIS");
  return mode != nullptr && std::string(mode) == "cluster";
}

}  // namespace

RedisForTest::RedisForTest(const std::string& appendfsync) {
  if (OnCluster()) {
    cluster_ = std::make_unique<RedisClusterForTest>();
    LoadFunctions();
    return;
  }
  embedded::EmbeddedRedisOptions opts;
  opts.data_dir = MakeTempDir("onestory-redis-");
  opts.appendfsync = appendfsync;
  opts.supervise = false;
  for (int attempt = 0; attempt < 5; ++attempt) {
    opts.port = PickFreePort();
    auto started = embedded::EmbeddedRedis::Start(opts);
    if (started.ok()) {
      server_ = *std::move(started);
      LoadFunctions();
      return;
    }
  }
  ADD_FAILURE() << "could not start redis-server";
  std::abort();
}

RedisForTest::~RedisForTest() {
  if (cluster_) return;  // its destructor kills the nodes and removes their directories
  std::string dir = data_dir();
  server_.reset();
  std::string cmd = "rm -rf '" + dir + "'";
  int ignored = std::system(cmd.c_str());
  (void)ignored;
}

std::string RedisForTest::address() const {
  return cluster_ ? absl::StrCat("127.0.0.1:", port()) : server_->tcp_address();
}

int RedisForTest::port() const {
  return cluster_ ? cluster_->Primaries().front() : server_->options().port;
}

std::string RedisForTest::data_dir() const { return cluster_ ? "" : server_->options().data_dir; }

void RedisForTest::LoadFunctions() {
  auto load = [](int port) {
    redis::Reply r = RunOnPort(port, {"FUNCTION", "LOAD", std::string(lua::kLibrary.code)});
    if (r.type == redis::Reply::Type::kError && !redis::IsLibraryLoaded(r.str)) {
      ADD_FAILURE() << "FUNCTION LOAD " << lua::kLibrary.name << ": "
                    << lua::kLibrary.Locate(r.str);
    }
  };
  if (!cluster_) return load(port());
  for (int p : cluster_->Primaries()) load(p);
}

redis::Reply RedisForTest::Run(const std::vector<std::string>& argv) {
  if (!cluster_) return RunOnPort(port(), argv);
  const std::string verb = absl::AsciiStrToUpper(argv.at(0));
  if (verb == "KEYS") {
    std::vector<int> primaries = cluster_->Primaries();
    redis::Reply all = RunOnPort(primaries[0], argv);
    for (size_t i = 1; i < primaries.size(); ++i) {
      for (redis::Reply& k : RunOnPort(primaries[i], argv).elements) {
        all.elements.push_back(std::move(k));
      }
    }
    return all;
  }
  if (verb == "FLUSHALL" || verb == "FUNCTION" || verb == "CONFIG") {
    // CONFIG on replicas too: a setting must hold after a failover.
    std::vector<int> nodes = verb == "CONFIG" ? cluster_->ports() : cluster_->Primaries();
    redis::Reply first;
    for (size_t i = 0; i < nodes.size(); ++i) {
      redis::Reply r = RunOnPort(nodes[i], argv);
      if (i == 0) first = std::move(r);
    }
    return first;
  }
  absl::StatusOr<std::vector<std::string>> keys = redis::CommandKeys(argv);
  if (!keys.ok() || keys->empty()) return RunOnPort(cluster_->Primaries().front(), argv);
  absl::StatusOr<int> slot = redis::KeysSlot(*keys);
  if (!slot.ok()) {
    ADD_FAILURE() << "a test command on a cluster: " << slot.status();
    redis::Reply err;
    err.type = redis::Reply::Type::kError;
    err.str = std::string(slot.status().message());
    return err;
  }
  return RunOnPort(cluster_->PrimaryOf(*slot), argv);
}

bool RedisForTest::AwaitOutboxesDrained() {
  const absl::Time until = absl::Now() + absl::Seconds(10);
  for (int b = 0; b < keys::kOutboxBuckets; ++b) {
    while (Run({"EXISTS", keys::PendingOutboxKey(b)}).integer != 0) {
      if (absl::Now() > until) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
  }
  return true;
}

std::map<std::string, std::string> RedisForTest::Snapshot() {
  EXPECT_TRUE(AwaitOutboxesDrained()) << "outboxes still pending after 10 s";
  std::map<std::string, std::string> out;
  redis::Reply keys = Run({"KEYS", "*"});
  for (const auto& k : keys.elements) {
    // The audit log records every call, a refused one too (that is its point); "a refused
    // request changes nothing" is about everything else.
    // Its buckets, os:{<t>:au:<bucket>}:log (keys::TenantKeys), and the layout before.
    if (absl::EndsWith(k.str, ":au}:log") ||
        (absl::EndsWith(k.str, "}:log") && absl::StrContains(k.str, ":au:"))) {
      continue;
    }
    out[k.str] = Run({"DUMP", k.str}).str;
  }
  return out;
}

void RedisForTest::FlushAll() {
  // A drain still under way would write into the next test's keys (a test that left a mark
  // on purpose, or a Redis it stopped, waits 10 s here).
  AwaitOutboxesDrained();
  Run({"FLUSHALL"});
}

void RedisForTest::Kill() {
  if (cluster_) {
    ADD_FAILURE() << "Kill: single Redis only (GTEST_SKIP on cluster())";
    return;
  }
  server_->Kill();
}

void RedisForTest::Restart() {
  if (cluster_) {
    ADD_FAILURE() << "Restart: single Redis only (GTEST_SKIP on cluster())";
    return;
  }
  absl::Status st = server_->Restart();
  ASSERT_TRUE(st.ok()) << st;
}

redis::Options RedisForTest::ClientOptions() const {
  if (cluster_) {
    redis::Options o = cluster_->ClientOptions();
    o.address = o.cluster_seeds.front();  // as --redis_cluster sets it (the address the logs name)
    return o;
  }
  redis::Options o;
  o.address = address();
  o.connect_timeout = absl::Milliseconds(500);
  o.command_timeout = absl::Seconds(2);
  o.reconnect_min = absl::Milliseconds(20);
  o.reconnect_max = absl::Milliseconds(200);
  return o;
}

}  // namespace onestory::testing
