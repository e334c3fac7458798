// ServerForTest: OneStory's services served in-process on 127.0.0.1:<free port> over real gRPC,
// against a RedisForTest, with stubs for each service.
//
//   RedisForTest redis;
//   ServerForTest server(redis);
//   grpc::ClientContext ctx;
//   server.identity()->Resolve(&ctx, request, &response);
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "onestory/v1/alert.grpc.pb.h"
#include "onestory/v1/case.grpc.pb.h"
#include "onestory/v1/context.grpc.pb.h"
#include "onestory/v1/conversation.grpc.pb.h"
#include "onestory/v1/identity.grpc.pb.h"
#include "onestory/v1/privacy.grpc.pb.h"
#include "onestory/v1/timeline.grpc.pb.h"
#include "services/server/onestory_server.h"
#include "tests/testing/redis_for_test.h"

namespace onestory::testing {

class ServerForTest {
 public:
  explicit ServerForTest(const RedisForTest& redis,
                         service::TimelineServiceOptions timeline_options = {});
  // With options changed by `configure` (policy, failpoints, ...).
  ServerForTest(const RedisForTest& redis,
                const std::function<void(service::ServerOptions*)>& configure);
  ~ServerForTest();

  service::OneStoryServer* server() { return server_.get(); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  // A fresh channel (its own HTTP/2 connection), e.g. for a second client.
  std::shared_ptr<grpc::Channel> NewChannel();
  v1::IdentityService::Stub* identity() { return identity_.get(); }
  v1::TimelineService::Stub* timeline() { return timeline_.get(); }
  v1::ContextService::Stub* context() { return context_.get(); }
  v1::ConversationService::Stub* conversations() { return conversations_.get(); }
  v1::CaseService::Stub* cases() { return cases_.get(); }
  v1::AlertService::Stub* alerts() { return alerts_.get(); }
  v1::PrivacyService::Stub* privacy() { return privacy_.get(); }

 private:
  std::unique_ptr<service::OneStoryServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IdentityService::Stub> identity_;
  std::unique_ptr<v1::TimelineService::Stub> timeline_;
  std::unique_ptr<v1::ContextService::Stub> context_;
  std::unique_ptr<v1::ConversationService::Stub> conversations_;
  std::unique_ptr<v1::CaseService::Stub> cases_;
  std::unique_ptr<v1::AlertService::Stub> alerts_;
  std::unique_ptr<v1::PrivacyService::Stub> privacy_;
};

}  // namespace onestory::testing
