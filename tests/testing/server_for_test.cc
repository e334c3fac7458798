#include "tests/testing/server_for_test.h"

#include <gtest/gtest.h>

namespace onestory::testing {

ServerForTest::ServerForTest(const RedisForTest& redis,
                             service::TimelineServiceOptions timeline_options)
    : ServerForTest(
          redis, [&](service::ServerOptions* opts) { opts->timeline_options = timeline_options; }) {
}

ServerForTest::ServerForTest(const RedisForTest& redis,
                             const std::function<void(service::ServerOptions*)>& configure) {
  service::ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.redis = redis.ClientOptions();
  if (configure) configure(&opts);
  auto started = service::OneStoryServer::Start(opts);
  if (!started.ok()) {
    ADD_FAILURE() << started.status();
    std::abort();
  }
  server_ = *std::move(started);
  channel_ = NewChannel();
  identity_ = v1::IdentityService::NewStub(channel_);
  timeline_ = v1::TimelineService::NewStub(channel_);
  context_ = v1::ContextService::NewStub(channel_);
  conversations_ = v1::ConversationService::NewStub(channel_);
  cases_ = v1::CaseService::NewStub(channel_);
  alerts_ = v1::AlertService::NewStub(channel_);
  privacy_ = v1::PrivacyService::NewStub(channel_);
}

ServerForTest::~ServerForTest() { server_->Shutdown(absl::Seconds(2)); }

std::shared_ptr<grpc::Channel> ServerForTest::NewChannel() {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
  return grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args);
}

}  // namespace onestory::testing
