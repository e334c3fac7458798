// ContextService over gRPC: hands GetContext to libs/context.
#pragma once

#include "libs/context/context_store.h"
#include "onestory/v1/context.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class ContextServiceImpl final : public v1::ContextService::CallbackService {
 public:
  ContextServiceImpl(context::ContextStore* store, const Authenticator* auth)
      : store_(store), auth_(auth) {}

  grpc::ServerUnaryReactor* GetContext(grpc::CallbackServerContext* ctx,
                                       const v1::GetContextRequest* req,
                                       v1::GetContextResponse* resp) override;

 private:
  context::ContextStore* store_;
  const Authenticator* auth_;
};

}  // namespace onestory::service
