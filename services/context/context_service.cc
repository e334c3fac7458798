#include "services/context/context_service.h"

#include "services/common/auth.h"
#include "services/common/unary.h"

namespace onestory::service {

grpc::ServerUnaryReactor* ContextServiceImpl::GetContext(grpc::CallbackServerContext* ctx,
                                                         const v1::GetContextRequest* req,
                                                         v1::GetContextResponse* resp) {
  absl::StatusOr<v1::GetContextRequest> allowed =
      AuthorizeRead(*auth_, *ctx,
                    {auth::Scope::kContextReadBot, auth::Scope::kContextReadAgent,
                     auth::Scope::kContextReadSupervisor},
                    *req);
  if (!allowed.ok()) return Reject(ctx, allowed.status());
  auto* reactor = ctx->DefaultReactor();
  store_->GetContext(*allowed, RequestDeadline(ctx),
                     FinishWith<v1::GetContextResponse>(
                         reactor, resp, [](v1::GetContextResponse* out, v1::GetContextResponse r) {
                           *out = std::move(r);
                         }));
  return reactor;
}

}  // namespace onestory::service
