#include "libs/redis/slot_map.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace onestory::redis {
namespace {

// The value under name in a RESP2 map (a flat array of name, value, ...), or null.
const Reply* Field(const Reply& map, absl::string_view name) {
  if (!map.is_array()) return nullptr;
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].is_string() && map.elements[i].str == name) return &map.elements[i + 1];
  }
  return nullptr;
}

std::string FieldText(const Reply& map, absl::string_view name) {
  const Reply* v = Field(map, name);
  if (v == nullptr) return "";
  if (v->type == Reply::Type::kInteger) return std::to_string(v->integer);
  return v->is_string() ? v->str : "";
}

bool ToInt(const Reply& r, int64_t* out) {
  if (r.type == Reply::Type::kInteger) {
    *out = r.integer;
    return true;
  }
  return r.is_string() && absl::SimpleAtoi(r.str, out);
}

absl::Status Bad(size_t shard, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("CLUSTER SHARDS reply, shard ", shard, ": ", what));
}

}  // namespace

const ClusterNode* ClusterShard::primary() const {
  for (const ClusterNode& n : nodes) {
    if (n.primary) return &n;
  }
  return nullptr;
}

SlotMap::SlotMap() { owner_.fill(-1); }

absl::StatusOr<SlotMap> SlotMap::FromClusterShards(const Reply& reply, bool tls) {
  if (!reply.is_array()) {
    return absl::InvalidArgumentError("CLUSTER SHARDS reply: not a list of shards");
  }
  SlotMap map;
  for (size_t s = 0; s < reply.elements.size(); ++s) {
    const Reply& shard_reply = reply.elements[s];
    const Reply* slots = Field(shard_reply, "slots");
    const Reply* nodes = Field(shard_reply, "nodes");
    if (slots == nullptr || !slots->is_array()) return Bad(s, "no \"slots\" list");
    if (nodes == nullptr || !nodes->is_array()) return Bad(s, "no \"nodes\" list");
    if (slots->elements.size() % 2 != 0) return Bad(s, "\"slots\" is not start/end pairs");
    ClusterShard shard;
    for (size_t i = 0; i < slots->elements.size(); i += 2) {
      int64_t first = 0, last = 0;
      if (!ToInt(slots->elements[i], &first) || !ToInt(slots->elements[i + 1], &last) ||
          first < 0 || last < first || last >= kClusterSlots) {
        return Bad(s, "a slot range is not two slots in order within [0, 16384)");
      }
      shard.ranges.emplace_back(static_cast<int>(first), static_cast<int>(last));
    }
    for (const Reply& node_reply : nodes->elements) {
      ClusterNode node;
      node.id = FieldText(node_reply, "id");
      std::string host = FieldText(node_reply, "endpoint");
      if (host.empty() || host == "?") host = FieldText(node_reply, "ip");
      const char* port_field = tls ? "tls-port" : "port";
      std::string port = FieldText(node_reply, port_field);
      int port_number = 0;
      if (host.empty() || !absl::SimpleAtoi(port, &port_number) || port_number <= 0) {
        return Bad(s, absl::StrCat("node ", node.id, " has no endpoint/ip and ", port_field));
      }
      node.address = absl::StrCat(host, ":", port_number);
      node.primary = FieldText(node_reply, "role") == "master";
      node.health = FieldText(node_reply, "health");
      shard.nodes.push_back(std::move(node));
    }
    const ClusterNode* primary = shard.primary();
    if (primary != nullptr && !shard.ranges.empty()) {
      int16_t index = -1;
      for (size_t a = 0; a < map.addresses_.size(); ++a) {
        if (map.addresses_[a] == primary->address) index = static_cast<int16_t>(a);
      }
      if (index < 0) {
        index = static_cast<int16_t>(map.addresses_.size());
        map.addresses_.push_back(primary->address);
      }
      for (auto [first, last] : shard.ranges) {
        for (int slot = first; slot <= last; ++slot) {
          if (map.owner_[slot] >= 0 && map.owner_[slot] != index) {
            return Bad(s, absl::StrCat("slot ", slot, " is claimed by two shards"));
          }
          map.owner_[slot] = index;
        }
      }
    }
    map.shards_.push_back(std::move(shard));
  }
  return map;
}

const std::string* SlotMap::Primary(int slot) const {
  if (slot < 0 || slot >= kClusterSlots || owner_[slot] < 0) return nullptr;
  return &addresses_[owner_[slot]];
}

std::vector<std::string> SlotMap::Primaries() const {
  std::vector<bool> seen(addresses_.size(), false);
  std::vector<std::string> out;
  for (int16_t owner : owner_) {
    if (owner < 0 || seen[owner]) continue;
    seen[owner] = true;
    out.push_back(addresses_[owner]);
  }
  return out;
}

int SlotMap::uncovered() const {
  return static_cast<int>(std::count(owner_.begin(), owner_.end(), int16_t{-1}));
}

void SlotMap::Assign(int slot, const std::string& address) {
  if (slot < 0 || slot >= kClusterSlots) return;
  auto it = std::find(addresses_.begin(), addresses_.end(), address);
  if (it == addresses_.end()) {
    addresses_.push_back(address);
    it = addresses_.end() - 1;
  }
  owner_[slot] = static_cast<int16_t>(it - addresses_.begin());
}

}  // namespace onestory::redis
