// Per-RPC metrics for every call a server handles, as a gRPC server interceptor:
//   grpc_server_started_total{grpc_method}
//   grpc_server_handled_total{grpc_method,grpc_code}
//   grpc_server_handling_seconds{grpc_method}   (histogram; for Watch, the stream's lifetime)
#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace onestory::service {

class MetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace onestory::service
