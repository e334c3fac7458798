#include "tests/testing/redis_cluster_for_test.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::testing {
namespace {

constexpr int kNodes = 6;

// Splits "host:port" to its port.
int PortOf(const std::string& address) {
  return std::atoi(address.substr(address.rfind(':') + 1).c_str());
}

// "name:value" of an INFO section, "" when absent.
std::string InfoField(const std::string& info, const std::string& name) {
  std::string prefix = name + ":";
  size_t at = info.find(prefix);
  if (at == std::string::npos) return "";
  size_t end = info.find("\r\n", at);
  return info.substr(at + prefix.size(), end - at - prefix.size());
}

}  // namespace

RedisClusterForTest::RedisClusterForTest(std::string password, std::string tls_dir)
    : password_(std::move(password)), tls_dir_(std::move(tls_dir)) {
  absl::Time started = absl::Now();
  dir_ = MakeTempDir("onestory-cluster-");
  nodes_.resize(kNodes);
  std::vector<int> taken;
  for (int i = 0; i < kNodes; ++i) {
    Node& n = nodes_[i];
    n.dir = absl::StrCat(dir_, "/", i);
    std::string mk = absl::StrCat("mkdir -p '", n.dir, "'");
    if (std::system(mk.c_str()) != 0) ADD_FAILURE() << "mkdir " << n.dir;
    bool up = false;
    for (int attempt = 0; attempt < 5 && !up; ++attempt) {
      // Two distinct free ports: the client port and the cluster bus (which by default would be
      // port + 10000, which nobody promised was free).
      auto clash = [&] {
        std::vector<int> mine = {n.port, n.bus_port};
        if (!tls_dir_.empty()) mine.push_back(n.tls_port);
        std::sort(mine.begin(), mine.end());
        if (std::adjacent_find(mine.begin(), mine.end()) != mine.end()) return true;
        for (int p : mine) {
          if (std::find(taken.begin(), taken.end(), p) != taken.end()) return true;
        }
        return false;
      };
      do {
        n.port = PickFreePort();
        n.bus_port = PickFreePort();
        if (!tls_dir_.empty()) n.tls_port = PickFreePort();
      } while (clash());
      up = StartNode(&n);
    }
    if (!up) {
      ADD_FAILURE() << "could not start redis-server in cluster mode";
      std::abort();
    }
    taken.push_back(n.port);
    taken.push_back(n.bus_port);
    if (!tls_dir_.empty()) taken.push_back(n.tls_port);
  }
  std::vector<std::string> addresses;
  for (const Node& n : nodes_) addresses.push_back(absl::StrCat("127.0.0.1:", n.port));
  // The password reaches redis-cli through its environment, not its command line.
  std::string auth = password_.empty() ? "" : absl::StrCat("REDISCLI_AUTH='", password_, "' ");
  std::string create =
      absl::StrCat(auth, "redis-cli --cluster create ", absl::StrJoin(addresses, " "),
                   " --cluster-replicas 1 --cluster-yes > '", dir_, "/create.log' 2>&1");
  if (std::system(create.c_str()) != 0) {
    ADD_FAILURE() << "redis-cli --cluster create failed; see " << dir_ << "/create.log";
    std::abort();
  }
  WaitHealthy(absl::Seconds(30));
  std::cerr << "[cluster] 3 primaries + 3 replicas ready in "
            << absl::FormatDuration(absl::Now() - started) << " under " << dir_ << "\n";
}

RedisClusterForTest::~RedisClusterForTest() {
  for (Node& n : nodes_) {
    if (n.pid > 0) {
      kill(n.pid, SIGKILL);
      waitpid(n.pid, nullptr, 0);
      n.pid = -1;
    }
  }
  std::string cmd = "rm -rf '" + dir_ + "'";
  int ignored = std::system(cmd.c_str());
  (void)ignored;
}

bool RedisClusterForTest::StartNode(Node* n) {
  // clang-format off
  std::vector<std::string> args = {
      "redis-server",
      "--port", absl::StrCat(n->port),
      "--cluster-port", absl::StrCat(n->bus_port),
      "--bind", "127.0.0.1",
      "--dir", n->dir,
      "--cluster-enabled", "yes",
      "--cluster-config-file", n->dir + "/nodes.conf",
      "--cluster-node-timeout", "1000",
      "--repl-diskless-sync-delay", "0",
      "--appendonly", "no",
      "--save", "",
      "--daemonize", "no",
      "--logfile", n->dir + "/redis.log",
  };
  // clang-format on
  if (!password_.empty()) {
    for (const char* flag : {"--requirepass", "--masterauth"}) {
      args.push_back(flag);
      args.push_back(password_);
    }
  }
  if (!tls_dir_.empty()) {
    std::vector<std::string> tls = TlsServerArgs(tls_dir_, n->tls_port);
    args.insert(args.end(), tls.begin(), tls.end());
    for (const char* yes : {"--tls-cluster", "--tls-replication"}) {
      args.push_back(yes);
      args.push_back("yes");
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    execvp(argv[0], argv.data());
    _exit(127);
  }
  n->pid = pid;
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (absl::Now() < give_up) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) {  // exited: the port was taken meanwhile
      n->pid = -1;
      return false;
    }
    redisContext* c = redisConnectWithTimeout("127.0.0.1", n->port, {0, 200000});
    bool ok = false;
    if (c != nullptr && !c->err) {
      // Without the password a node answers NOAUTH: up, too.
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    if (ok) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  n->pid = -1;
  return false;
}

std::vector<int> RedisClusterForTest::ports() const {
  std::vector<int> out;
  for (const Node& n : nodes_) out.push_back(n.port);
  return out;
}

std::vector<int> RedisClusterForTest::LivePorts() const {
  std::vector<int> out;
  for (const Node& n : nodes_) {
    if (n.pid > 0) out.push_back(n.port);
  }
  return out;
}

redis::Options RedisClusterForTest::ClientOptions() const {
  redis::Options o;
  for (const Node& n : nodes_) {
    o.cluster_seeds.push_back(absl::StrCat("127.0.0.1:", tls_dir_.empty() ? n.port : n.tls_port));
  }
  if (!tls_dir_.empty()) o.tls = TestTlsContext(tls_dir_);
  o.password = password_;
  o.connect_timeout = absl::Milliseconds(500);
  o.command_timeout = absl::Seconds(2);
  o.reconnect_min = absl::Milliseconds(20);
  o.reconnect_max = absl::Milliseconds(200);
  return o;
}

redis::Reply RedisClusterForTest::Run(int port, const std::vector<std::string>& argv) {
  return RunOnPort(port, argv, password_);
}

void RedisClusterForTest::RunOnPrimaries(const std::vector<std::string>& argv) {
  for (int p : Primaries()) {
    redis::Reply r = Run(p, argv);
    EXPECT_NE(r.type, redis::Reply::Type::kError) << argv[0] << " on " << p << ": " << r.str;
  }
}

redis::SlotMap RedisClusterForTest::Map() {
  for (int port : LivePorts()) {
    absl::StatusOr<redis::SlotMap> map =
        redis::SlotMap::FromClusterShards(Run(port, {"CLUSTER", "SHARDS"}));
    if (map.ok()) return *std::move(map);
  }
  ADD_FAILURE() << "no live node answered CLUSTER SHARDS";
  return redis::SlotMap();
}

int RedisClusterForTest::PrimaryOf(int slot) {
  redis::SlotMap map = Map();
  const std::string* p = map.Primary(slot);
  return p == nullptr ? 0 : PortOf(*p);
}

std::vector<int> RedisClusterForTest::Primaries() {
  std::vector<int> out;
  for (const std::string& p : Map().Primaries()) out.push_back(PortOf(p));
  return out;
}

int RedisClusterForTest::ReplicaOf(int primary_port) {
  // A replica joins its shard's CLUSTER SHARDS entry once its primary has seen it sync, which
  // can lag the cluster's start under load: wait for it.
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    redis::SlotMap map = Map();
    for (const redis::ClusterShard& shard : map.shards()) {
      const redis::ClusterNode* primary = shard.primary();
      if (primary == nullptr || PortOf(primary->address) != primary_port) continue;
      for (const redis::ClusterNode& n : shard.nodes) {
        if (!n.primary && n.health != "fail") return PortOf(n.address);
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < give_up);
  return 0;
}

std::string RedisClusterForTest::NodeId(int port) { return Run(port, {"CLUSTER", "MYID"}).str; }

void RedisClusterForTest::Kill(int port) {
  for (Node& n : nodes_) {
    if (n.port != port || n.pid <= 0) continue;
    kill(n.pid, SIGKILL);
    waitpid(n.pid, nullptr, 0);
    n.pid = -1;
    return;
  }
  ADD_FAILURE() << "no live node on port " << port;
}

void RedisClusterForTest::Failover(int replica_port) {
  // A slot of the replica's shard, to wait on.
  redis::SlotMap before = Map();
  int slot = -1;
  std::string me = absl::StrCat("127.0.0.1:", replica_port);
  for (const redis::ClusterShard& shard : before.shards()) {
    for (const redis::ClusterNode& n : shard.nodes) {
      if (n.address == me && !shard.ranges.empty()) slot = shard.ranges.front().first;
    }
  }
  ASSERT_GE(slot, 0) << "node " << replica_port << " is no replica of a primary with slots";
  redis::Reply r = Run(replica_port, {"CLUSTER", "FAILOVER"});
  ASSERT_NE(r.type, redis::Reply::Type::kError) << r.str;
  WaitOwner(slot, replica_port);
}

void RedisClusterForTest::WaitOwner(int slot, int port, absl::Duration timeout) {
  absl::Time give_up = absl::Now() + timeout;
  std::string want = absl::StrCat("127.0.0.1:", port);
  while (absl::Now() < give_up) {
    bool all = true;
    for (int p : LivePorts()) {
      absl::StatusOr<redis::SlotMap> map =
          redis::SlotMap::FromClusterShards(Run(p, {"CLUSTER", "SHARDS"}));
      if (!map.ok() || map->Primary(slot) == nullptr || *map->Primary(slot) != want) {
        all = false;
        break;
      }
    }
    if (all) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ADD_FAILURE() << "not every node names " << want << " as the owner of slot " << slot;
}

void RedisClusterForTest::WaitHealthy(absl::Duration timeout) {
  absl::Time give_up = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < give_up) {
    bool ok = true;
    std::string first_map;
    for (int p : LivePorts()) {
      std::string info = Run(p, {"CLUSTER", "INFO"}).str;
      if (InfoField(info, "cluster_state") != "ok") {
        ok = false;
        last = absl::StrCat(p, ": cluster_state ", InfoField(info, "cluster_state"));
        break;
      }
      // Agreement on who serves what.
      absl::StatusOr<redis::SlotMap> map =
          redis::SlotMap::FromClusterShards(Run(p, {"CLUSTER", "SHARDS"}));
      if (!map.ok() || map->uncovered() != 0) {
        ok = false;
        last = absl::StrCat(p, ": slots not all covered");
        break;
      }
      std::string owners;
      for (int s = 0; s < redis::kClusterSlots; s += 512) owners += *map->Primary(s) + ",";
      if (first_map.empty()) first_map = owners;
      if (owners != first_map) {
        ok = false;
        last = absl::StrCat(p, ": a different slot map");
        break;
      }
      std::string repl = Run(p, {"INFO", "replication"}).str;
      if (InfoField(repl, "role") == "slave" &&
          (InfoField(repl, "master_link_status") != "up" ||
           InfoField(repl, "master_sync_in_progress") != "0")) {
        ok = false;
        last = absl::StrCat(p, ": replica not in sync");
        break;
      }
      // A primary counts its replica (for WAIT, and in CLUSTER SHARDS' view of it) only once
      // the replica's first acknowledgement after the sync has arrived.
      if (InfoField(repl, "role") == "master" && repl.find("state=online") == std::string::npos) {
        ok = false;
        last = absl::StrCat(p, ": no replica online yet");
        break;
      }
    }
    if (ok) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ADD_FAILURE() << "cluster not healthy in time: " << last;
}

void RedisClusterForTest::BeginMigration(int slot, int from, int to) {
  std::string s = absl::StrCat(slot);
  redis::Reply r = Run(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", NodeId(from)});
  ASSERT_NE(r.type, redis::Reply::Type::kError) << r.str;
  r = Run(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", NodeId(to)});
  ASSERT_NE(r.type, redis::Reply::Type::kError) << r.str;
}

int RedisClusterForTest::MigrateKeys(int slot, int from, int to, int batch, absl::Duration pause) {
  int moved = 0;
  while (true) {
    if (moved > 0) absl::SleepFor(pause);
    redis::Reply keys =
        Run(from, {"CLUSTER", "GETKEYSINSLOT", absl::StrCat(slot), absl::StrCat(batch)});
    if (keys.elements.empty()) return moved;
    std::vector<std::string> argv = {"MIGRATE", "127.0.0.1", absl::StrCat(to), "", "0",
                                     "5000",    "KEYS"};
    for (const redis::Reply& k : keys.elements) argv.push_back(k.str);
    redis::Reply r = Run(from, argv);
    if (r.type == redis::Reply::Type::kError) {
      ADD_FAILURE() << "MIGRATE: " << r.str;
      return moved;
    }
    moved += static_cast<int>(keys.elements.size());
  }
}

void RedisClusterForTest::FinishMigration(int slot, int from, int to) {
  std::string s = absl::StrCat(slot);
  std::string id = NodeId(to);
  // The target first, then the source, then the other primaries, as redis-cli does.
  std::vector<int> order = {to, from};
  for (int p : Primaries()) {
    if (p != to && p != from) order.push_back(p);
  }
  for (int p : order) {
    redis::Reply r = Run(p, {"CLUSTER", "SETSLOT", s, "NODE", id});
    EXPECT_NE(r.type, redis::Reply::Type::kError) << "SETSLOT NODE on " << p << ": " << r.str;
  }
  WaitOwner(slot, to);
}

}  // namespace onestory::testing
