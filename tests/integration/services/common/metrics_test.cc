// The /metrics endpoint of a real server: per-RPC counts by status code, latency histograms,
// Redis round trips, connection state and open watches, in Prometheus text format.
#include <gtest/gtest.h>
#include <httplib.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "services/server/onestory_server.h"
#include "tests/testing/redis_for_test.h"

namespace onestory {
namespace {

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  EXPECT_TRUE(res && res->status == 200);
  return res ? res->body : "";
}

TEST(MetricsTest, ServesPerRpcAndRedisMetrics) {
  testing::RedisForTest redis;
  service::ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.metrics_listen = "127.0.0.1:0";
  opts.redis = redis.ClientOptions();
  auto server = service::OneStoryServer::Start(opts);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->metrics_port(), 0);
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto identity = v1::IdentityService::NewStub(channel);
  auto timeline = v1::TimelineService::NewStub(channel);

  v1::ResolveRequest resolve;
  resolve.set_tenant("acme");
  resolve.mutable_identifier()->set_type(v1::IDENTIFIER_TYPE_PHONE);
  resolve.mutable_identifier()->set_value("14155550100");
  resolve.set_create_if_missing(true);
  v1::ResolveResponse resolved;
  grpc::ClientContext c1;
  ASSERT_TRUE(identity->Resolve(&c1, resolve, &resolved).ok());
  v1::AppendRequest bad;
  bad.set_tenant("acme");
  bad.mutable_customer()->set_customer_id(resolved.customer_id());
  bad.add_events();  // no channel: INVALID_ARGUMENT
  v1::AppendResponse ignored;
  grpc::ClientContext c2;
  ASSERT_EQ(timeline->Append(&c2, bad, &ignored).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::WatchRequest watch;
  watch.set_tenant("acme");
  watch.mutable_customer()->set_customer_id(resolved.customer_id());
  grpc::ClientContext c3;
  auto reader = timeline->Watch(&c3, watch);
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  std::string text;
  do {
    text = Scrape((*server)->metrics_port());
  } while (!(absl::StrContains(text, "\nonestory_watches_open 1\n") &&
             absl::StrContains(text, "\nonestory_watch_subscriber_connected 1\n")) &&
           absl::Now() < give_up);

  EXPECT_TRUE(
      absl::StrContains(text,
                        "grpc_server_handled_total{grpc_service=\"onestory.v1.IdentityService\","
                        "grpc_method=\"Resolve\",grpc_type=\"unary\",grpc_code=\"OK\"} 1\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text,
      "grpc_server_handled_total{grpc_service=\"onestory.v1.TimelineService\","
      "grpc_method=\"Append\",grpc_type=\"unary\",grpc_code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_TRUE(
      absl::StrContains(text,
                        "grpc_server_started_total{grpc_service=\"onestory.v1.TimelineService\","
                        "grpc_method=\"Watch\",grpc_type=\"server_stream\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(
      text,
      "grpc_server_handling_seconds_count{grpc_service=\"onestory.v1.IdentityService\","
      "grpc_method=\"Resolve\",grpc_type=\"unary\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE onestory_redis_reconnects_total counter\n"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_TRUE(absl::StrContains(text, "onestory_build_info{version=\""));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE onestory_redis_roundtrip_seconds histogram"));
  EXPECT_FALSE(absl::StrContains(text, "onestory_redis_roundtrip_seconds_count 0\n"));
  EXPECT_TRUE(absl::StrContains(text, "onestory_redis_connected 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "onestory_watches_open 1\n"));
  EXPECT_TRUE(absl::StrContains(text, "onestory_watch_subscriber_connected 1\n"));
  c3.TryCancel();
  reader->Finish();
  (*server)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace onestory
