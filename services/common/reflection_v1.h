// ReflectionV1Service: gRPC server reflection, grpc.reflection.v1 (libgrpc++ 1.51 serves only
// grpc.reflection.v1alpha, and current grpcurl, Postman and grpcui ask for v1 first). It
// answers from the descriptors compiled into the binary, as v1alpha does: a file with every
// file it imports that this stream has not sent yet, the file declaring a symbol or an
// extension, a message type's extension numbers, and the services the server registered.
#pragma once

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace onestory::service {

class ReflectionV1Service final : public grpc::reflection::v1::ServerReflection::CallbackService {
 public:
  // `services`: the full names list_services answers with.
  explicit ReflectionV1Service(std::vector<std::string> services)
      : services_(std::move(services)) {}

  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* ctx) override;

 private:
  std::vector<std::string> services_;
};

}  // namespace onestory::service
