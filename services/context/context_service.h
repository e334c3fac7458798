// ContextService over gRPC: hands GetContext to libs/context.
#pragma once

#include "libs/context/context_store.h"
#include "onestory/v1/context.grpc.pb.h"

namespace onestory::service {

class ContextServiceImpl final : public v1::ContextService::CallbackService {
 public:
  explicit ContextServiceImpl(context::ContextStore* store) : store_(store) {}

  grpc::ServerUnaryReactor* GetContext(grpc::CallbackServerContext* ctx,
                                       const v1::GetContextRequest* req,
                                       v1::GetContextResponse* resp) override;

 private:
  context::ContextStore* store_;
};

}  // namespace onestory::service
