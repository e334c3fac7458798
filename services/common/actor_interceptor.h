// Makes the writes of agent-token calls the agent's (auth.h). For a call with an agent token,
// every acting Actor of the request — fields named `actor`, `served_by` and `from`, at any
// depth, so an Append's events too — that is left empty becomes the token's agent (TYPE_BOT for
// a BOT token, else TYPE_AGENT), and one naming anyone else marks the call: Authenticator::Check
// then refuses it with PERMISSION_DENIED naming the field. Fields naming someone else on purpose
// (a handoff's `to`, a case's `owner`) are left as they are. API-key calls pass untouched.
// It also brackets every OneStory call with Authenticator::OpenCall / CloseCall, so the caller
// is identified once per call.
//
//   builder.experimental().SetInterceptorCreators(... ActorInterceptorFactory(auth) ...);
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/server_interceptor.h>

#include <string>

#include "absl/strings/string_view.h"
#include "services/common/auth.h"

namespace onestory::service {

// The metadata entry the interceptor adds to a call it marks: why it is refused.
inline constexpr absl::string_view kActorRefused = "onestory-actor-refused";

class ActorInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ActorInterceptorFactory(const Authenticator* auth) : auth_(auth) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const Authenticator* auth_;
};

// Fills the acting Actors of `request` that are empty with `caller`'s agent; returns why the
// request is refused ("" when it is not): the first acting Actor naming someone else. Exposed
// for tests.
std::string ActAsAgent(const Caller& caller, google::protobuf::Message* request);

}  // namespace onestory::service
