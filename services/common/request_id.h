// Request ids: every call gets one, so an integrator's support ticket can be matched with the
// server's logs and audit log.
//
// The id is the caller's `x-request-id` (1-128 characters of A-Z a-z 0-9 . _ : -), else the
// trace id of a W3C `traceparent` header, else 32 random hex digits. The interceptor returns it
// as `x-request-id` in the response's initial metadata (and trailing metadata on errors), adds
// " [request_id=<id>]" to every error message, logs each call that fails on the server's side
// (INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED, DATA_LOSS; at most 20 lines a second,
// the rest counted) and, at --log_level=debug, every call. Handlers and the audit interceptor
// read it with RequestIdOf.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>

#include <string>

#include "absl/strings/string_view.h"

namespace onestory::service {

class RequestIdInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

// The call's request id ("" for a call the interceptor did not see).
std::string RequestIdOf(const grpc::ServerContextBase& ctx);

// The id a caller's headers give ("" when neither is usable); exposed for tests.
std::string RequestIdFromHeaders(absl::string_view x_request_id, absl::string_view traceparent);
// 32 random lowercase hex digits.
std::string NewRequestId();

}  // namespace onestory::service
