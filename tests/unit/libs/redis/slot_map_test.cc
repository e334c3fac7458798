// SlotMap from CLUSTER SHARDS replies recorded from Redis 7.0.15 (RESP as it came off the wire,
// parsed by hiredis as the client does).
#include "libs/redis/slot_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>

#include "absl/strings/str_replace.h"

namespace onestory::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// CLUSTER SHARDS of a new 3-primary, 3-replica cluster (replicas still loading).
constexpr char kHealthy[] =
    "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n05e3f136e7c050b3c7beb060392ccfe0b36d2862\r\n$4\r\nport\r\n:27002\r\n$2\r\n"
    "ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n"
    "master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n"
    "$2\r\nid\r\n$40\r\n6bd7bde73297546b4d59920d02bceb7bc85e3827\r\n$4\r\nport\r\n:27004\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n"
    "replica\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n"
    "$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "0fec3eb138d9f9a2c6adff668298fe8fd2424ad2\r\n$4\r\nport\r\n:27001\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "de5fd343941064ae6b78c7c5b431f5469f0ea1c5\r\n$4\r\nport\r\n:27006\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n"
    ":10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "4485e9e2a7955f498b52d616fbdf9154fcd19bde\r\n$4\r\nport\r\n:27003\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "0f54eedb40ddd9f5fb17067c692d9963eae88a1d\r\n$4\r\nport\r\n:27005\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n";
// The same after kill -9 of the primary of 5461-10922, before its replica took over.
constexpr char kPrimaryFailed[] =
    "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n05e3f136e7c050b3c7beb060392ccfe0b36d2862\r\n$4\r\nport\r\n:27002\r\n$2\r\n"
    "ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n"
    "master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$4\r\nfail\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n6bd7bde73297546b4d59920d02bceb7bc85e3827\r\n$4\r\nport\r\n:27004\r\n$2\r\n"
    "ip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\n"
    "replica\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n"
    "$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "0fec3eb138d9f9a2c6adff668298fe8fd2424ad2\r\n$4\r\nport\r\n:27001\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "de5fd343941064ae6b78c7c5b431f5469f0ea1c5\r\n$4\r\nport\r\n:27006\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n*4\r\n$5\r\nslots\r\n*2\r\n"
    ":10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "4485e9e2a7955f498b52d616fbdf9154fcd19bde\r\n$4\r\nport\r\n:27003\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "0f54eedb40ddd9f5fb17067c692d9963eae88a1d\r\n$4\r\nport\r\n:27005\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$7\r\nloading\r\n";
// Another cluster after kill -9 of the primary 27002 and its replica 27006 taking over: the
// old primary is a shard of its own with no slots.
constexpr char kAfterFailover[] =
    "*4\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "3e1c08ea063708fdc6e4e55d752186dd74664dea\r\n$4\r\nport\r\n:27002\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$4\r\nfail\r\n*4\r\n$5\r\nslots\r\n*2\r\n"
    ":10923\r\n:16383\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "6659733d7550b13840584245a97b83e27e82adc3\r\n$4\r\nport\r\n:27003\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:28\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "3d4ac2b507a13944801cf70dcd446c776672fa4b\r\n$4\r\nport\r\n:27004\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n"
    "replication-offset\r\n:28\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n$5\r\nslots\r\n*2\r\n"
    ":0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "0be2ca91e2d1490d728e368d8416f93b7fa48b3b\r\n$4\r\nport\r\n:27001\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:28\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "a76f8b04e9daf57e977c0f957215bce6dd027ef0\r\n$4\r\nport\r\n:27005\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\n"
    "replication-offset\r\n:28\r\n$6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n$5\r\nslots\r\n*2\r\n"
    ":5461\r\n:10922\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "b62c7006948b6a6b5cc32dec2f395d4c8c4c4c94\r\n$4\r\nport\r\n:27006\r\n$2\r\nip\r\n$9\r\n"
    "127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";

Reply Parse(absl::string_view resp) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, resp.data(), resp.size());
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &raw), REDIS_OK);
  EXPECT_NE(raw, nullptr);
  Reply out = Reply::FromHiredis(static_cast<redisReply*>(raw));
  if (raw != nullptr) freeReplyObject(raw);
  redisReaderFree(reader);
  return out;
}

TEST(SlotMapTest, OverTlsNodesAreReachedAtTheirTlsPort) {
  // A cluster with tls-cluster yes also gives each node's "tls-port"; here it replaces "port".
  std::string tls_only = absl::StrReplaceAll(kHealthy, {{"$4\r\nport\r\n", "$8\r\ntls-port\r\n"}});
  absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(Parse(tls_only), true);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_THAT(map->Primaries(),
              ElementsAre("127.0.0.1:27001", "127.0.0.1:27002", "127.0.0.1:27003"));
  // Without it, over TLS the map is refused, naming the field.
  absl::Status st = SlotMap::FromClusterShards(Parse(kHealthy), true).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("tls-port"), std::string::npos) << st;
  EXPECT_EQ(SlotMap::FromClusterShards(Parse(tls_only)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SlotMapTest, HealthyCluster) {
  absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(Parse(kHealthy));
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->uncovered(), 0);
  EXPECT_EQ(*map->Primary(0), "127.0.0.1:27001");
  EXPECT_EQ(*map->Primary(5460), "127.0.0.1:27001");
  EXPECT_EQ(*map->Primary(5461), "127.0.0.1:27002");
  EXPECT_EQ(*map->Primary(10922), "127.0.0.1:27002");
  EXPECT_EQ(*map->Primary(10923), "127.0.0.1:27003");
  EXPECT_EQ(*map->Primary(16383), "127.0.0.1:27003");
  EXPECT_EQ(map->Primary(16384), nullptr);
  EXPECT_EQ(map->Primary(-1), nullptr);
  EXPECT_THAT(map->Primaries(),
              ElementsAre("127.0.0.1:27001", "127.0.0.1:27002", "127.0.0.1:27003"));
  ASSERT_EQ(map->shards().size(), 3u);
  const ClusterShard& first = map->shards()[0];
  ASSERT_EQ(first.nodes.size(), 2u);
  EXPECT_EQ(first.nodes[0].id, "05e3f136e7c050b3c7beb060392ccfe0b36d2862");
  EXPECT_TRUE(first.nodes[0].primary);
  EXPECT_EQ(first.nodes[0].health, "online");
  EXPECT_EQ(first.nodes[1].address, "127.0.0.1:27004");
  EXPECT_FALSE(first.nodes[1].primary);
  EXPECT_EQ(first.nodes[1].health, "loading");
}

TEST(SlotMapTest, FailedPrimaryStillOwnsItsSlotsUntilReplaced) {
  absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(Parse(kPrimaryFailed));
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(*map->Primary(6000), "127.0.0.1:27002");
  EXPECT_EQ(map->shards()[0].primary()->health, "fail");
}

TEST(SlotMapTest, AfterFailoverTheReplicaServesAndTheOldPrimaryNothing) {
  absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(Parse(kAfterFailover));
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->uncovered(), 0);
  EXPECT_EQ(*map->Primary(6000), "127.0.0.1:27006");
  EXPECT_EQ(*map->Primary(0), "127.0.0.1:27001");
  EXPECT_EQ(*map->Primary(16000), "127.0.0.1:27003");
  EXPECT_THAT(map->Primaries(),
              ElementsAre("127.0.0.1:27001", "127.0.0.1:27006", "127.0.0.1:27003"));
  EXPECT_EQ(map->shards().size(), 4u);
  EXPECT_TRUE(map->shards()[0].ranges.empty());
}

TEST(SlotMapTest, AssignFollowsMoved) {
  absl::StatusOr<SlotMap> map = SlotMap::FromClusterShards(Parse(kHealthy));
  ASSERT_TRUE(map.ok());
  map->Assign(100, "127.0.0.1:27003");
  EXPECT_EQ(*map->Primary(100), "127.0.0.1:27003");
  EXPECT_EQ(*map->Primary(101), "127.0.0.1:27001");
  map->Assign(101, "127.0.0.1:29999");
  EXPECT_EQ(*map->Primary(101), "127.0.0.1:29999");
}

TEST(SlotMapTest, EmptyMapCoversNothing) {
  SlotMap map;
  EXPECT_EQ(map.uncovered(), kClusterSlots);
  EXPECT_EQ(map.Primary(0), nullptr);
  EXPECT_TRUE(map.Primaries().empty());
}

TEST(SlotMapTest, MalformedRepliesAreRefused) {
  Reply not_list;
  not_list.type = Reply::Type::kString;
  EXPECT_EQ(SlotMap::FromClusterShards(not_list).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A shard with an odd slot list.
  Reply odd = Parse("*1\r\n*4\r\n$5\r\nslots\r\n*1\r\n:1\r\n$5\r\nnodes\r\n*0\r\n");
  absl::Status st = SlotMap::FromClusterShards(odd).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("slots"));
  // A slot out of range.
  Reply range = Parse("*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16384\r\n$5\r\nnodes\r\n*0\r\n");
  EXPECT_EQ(SlotMap::FromClusterShards(range).status().code(), absl::StatusCode::kInvalidArgument);
  // A node without a port.
  Reply node = Parse(
      "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n*4\r\n$2\r\nip\r\n$1\r\n"
      "x\r\n$4\r\nrole\r\n$6\r\nmaster\r\n");
  EXPECT_THAT(SlotMap::FromClusterShards(node).status().message(), HasSubstr("port"));
}

}  // namespace
}  // namespace onestory::redis
