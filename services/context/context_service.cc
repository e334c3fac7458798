#include "services/context/context_service.h"

#include "services/common/unary.h"

namespace onestory::service {

grpc::ServerUnaryReactor* ContextServiceImpl::GetContext(grpc::CallbackServerContext* ctx,
                                                         const v1::GetContextRequest* req,
                                                         v1::GetContextResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->GetContext(*req, RequestDeadline(ctx),
                     FinishWith<v1::GetContextResponse>(
                         reactor, resp, [](v1::GetContextResponse* out, v1::GetContextResponse r) {
                           *out = std::move(r);
                         }));
  return reactor;
}

}  // namespace onestory::service
