// SlotMap: which node serves each of Redis Cluster's 16384 hash slots, built from the reply to
// CLUSTER SHARDS (Redis 7).
//
//   absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(reply);
//   const std::string* primary = map->Primary(KeySlot(key));  // "127.0.0.1:7001", or null
//   map->Assign(slot, "127.0.0.1:7002");  // a MOVED redirection said so
//
// CLUSTER SHARDS answers a list of shards, each a map with "slots" (a flat list of start and end
// slots, both included) and "nodes" (maps with "id", "ip", "endpoint", "port", "role" "master"
// or "replica", "health" "online", "loading" or "fail"). A shard with no slots (a failed
// primary whose replica took over, a node not yet given slots) serves nothing. The node's
// address is "<endpoint>:<port>", or "<ip>:<port>" when the endpoint is unknown ("?" or empty).
// A value; not thread-safe (the cluster router keeps it on its loop thread).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/redis/reply.h"
#include "libs/redis/slot.h"

namespace onestory::redis {

struct ClusterNode {
  std::string id;
  std::string address;  // "host:port"
  bool primary = false;
  std::string health;  // "online", "loading", "fail"
};

struct ClusterShard {
  std::vector<std::pair<int, int>> ranges;  // [first, last] slots, both included
  std::vector<ClusterNode> nodes;
  // The node of `nodes` that is the primary, or null when none is (a shard mid-failover).
  const ClusterNode* primary() const;
};

class SlotMap {
 public:
  SlotMap();

  // Parses a CLUSTER SHARDS reply. INVALID_ARGUMENT when it does not have the shape above
  // (naming what is wrong), or when two shards claim one slot. With `tls`, each node's address
  // takes its "tls-port" (a cluster with tls-cluster yes), else its "port".
  static absl::StatusOr<SlotMap> FromClusterShards(const Reply& reply, bool tls = false);

  // The address of slot's primary, or null when no primary serves it.
  const std::string* Primary(int slot) const;
  // Every address that is the primary of at least one slot, each once, in slot order.
  std::vector<std::string> Primaries() const;
  // Slots with no primary.
  int uncovered() const;
  const std::vector<ClusterShard>& shards() const { return shards_; }

  // Records that address now serves slot (a MOVED redirection), until the next refresh.
  void Assign(int slot, const std::string& address);

 private:
  std::vector<ClusterShard> shards_;
  std::vector<std::string> addresses_;  // distinct primary addresses
  // Index into addresses_ per slot; -1 for none.
  std::array<int16_t, kClusterSlots> owner_;
};

}  // namespace onestory::redis
