// RedisClusterForTest: a real Redis Cluster for one test, 3 primaries and 3 replicas, each a
// redis-server on free loopback ports (its client and cluster-bus ports) in a fresh temporary
// directory, with helpers for the fault tests.
//
//   RedisClusterForTest cluster;              // ~4 s: started, slots assigned, replicas in sync
//   redis::Client client(cluster.ClientOptions());
//   int primary = cluster.PrimaryOf(redis::KeySlot(key));
//   cluster.Failover(cluster.ReplicaOf(primary));   // CLUSTER FAILOVER, waits for agreement
//   cluster.Kill(primary);                           // SIGKILL
//   cluster.BeginMigration(slot, from, to); cluster.MigrateKeys(slot, from, to);
//   cluster.FinishMigration(slot, to);
//
// The nodes run with cluster-node-timeout 1000 (a killed primary's replica takes over within a
// few seconds), no persistence, and repl-diskless-sync-delay 0 (replicas sync at once). The
// cluster is made with redis-cli --cluster create; nothing is loaded (no functions). With a
// password every node requires it (requirepass, and masterauth for its replicas). The
// destructor kills every node and removes the directories. Not thread-safe; the helpers fail
// the test (ADD_FAILURE) when the cluster does not do what they wait for in time.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/redis/options.h"
#include "libs/redis/reply.h"
#include "libs/redis/slot_map.h"

namespace onestory::testing {

class RedisClusterForTest {
 public:
  // tls_dir: MakeTlsFiles's directory; when set every node also serves TLS (tls-port, with
  // tls-cluster and tls-replication yes) and ClientOptions connects to it over TLS.
  explicit RedisClusterForTest(std::string password = "", std::string tls_dir = "");
  ~RedisClusterForTest();
  RedisClusterForTest(const RedisClusterForTest&) = delete;
  RedisClusterForTest& operator=(const RedisClusterForTest&) = delete;

  // Every node's client port, in start order (the first three became the primaries).
  std::vector<int> ports() const;
  // Client options with every node as a seed, the password, and the test timeouts of
  // RedisForTest.
  redis::Options ClientOptions() const;

  // Runs one command on the node at port over a private synchronous connection. A transport
  // error fails the test and returns an error Reply.
  redis::Reply Run(int port, const std::vector<std::string>& argv);
  // Runs argv on every current primary.
  void RunOnPrimaries(const std::vector<std::string>& argv);

  // The slot map as a live node answers CLUSTER SHARDS.
  redis::SlotMap Map();
  // The port of the primary serving slot (0 when none).
  int PrimaryOf(int slot);
  // The ports of the primaries, in slot order.
  std::vector<int> Primaries();
  // The port of a replica of the primary at port, waiting up to 10 s for one (0 when none).
  int ReplicaOf(int primary_port);
  std::string NodeId(int port);

  // SIGKILL of the node at port; no flush.
  void Kill(int port);
  // CLUSTER FAILOVER on the replica at port; returns once every live node sees it as the
  // primary of its slots.
  void Failover(int replica_port);
  // Waits until every live node says cluster_state:ok, agrees on the slot map, and every
  // replica's link to its primary is up.
  void WaitHealthy(absl::Duration timeout = absl::Seconds(15));
  // Waits until every live node names `port` as the primary of slot.
  void WaitOwner(int slot, int port, absl::Duration timeout = absl::Seconds(15));

  // Slot migration in the steps Redis's resharding uses: SETSLOT IMPORTING on `to`, MIGRATING
  // on `from`; MIGRATE of every key in the slot, `batch` keys at a time with `pause` between
  // (returns how many moved); SETSLOT NODE on every primary.
  void BeginMigration(int slot, int from, int to);
  int MigrateKeys(int slot, int from, int to, int batch = 10,
                  absl::Duration pause = absl::ZeroDuration());
  void FinishMigration(int slot, int from, int to);

 private:
  struct Node {
    int port = 0;
    int bus_port = 0;
    int tls_port = 0;  // with tls_dir
    pid_t pid = -1;
    std::string dir;
  };
  bool StartNode(Node* node);
  std::vector<int> LivePorts() const;

  std::string password_;
  std::string tls_dir_;
  std::string dir_;
  std::vector<Node> nodes_;
};

}  // namespace onestory::testing
