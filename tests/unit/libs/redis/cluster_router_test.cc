// The seed list of --redis_cluster. (The router itself is tested on a real cluster:
// tests/integration/libs/redis/cluster_client_test.cc.)
#include "libs/redis/cluster_router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace onestory::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseClusterSeedsTest, ListOfHostPorts) {
  EXPECT_THAT(*ParseClusterSeeds("10.0.0.1:7000"), ElementsAre("10.0.0.1:7000"));
  EXPECT_THAT(*ParseClusterSeeds("a:7000, b:7001,c:7002"),
              ElementsAre("a:7000", "b:7001", "c:7002"));
}

TEST(ParseClusterSeedsTest, RefusesWhatIsNotHostPort) {
  for (const char* bad :
       {"", "a:7000,", "a", "a:0", "a:70000", "unix:/tmp/r.sock", "/tmp/r.sock", "a:7000,b"}) {
    absl::StatusOr<std::vector<std::string>> seeds = ParseClusterSeeds(bad);
    EXPECT_EQ(seeds.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(seeds.status().message(), HasSubstr("--redis_cluster")) << bad;
  }
}

}  // namespace
}  // namespace onestory::redis
