// Finishing a unary callback RPC from a store callback.
//
//   grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* ctx, const Req* req,
//                                     Resp* resp) override {
//     auto* reactor = ctx->DefaultReactor();
//     store_->Resolve(..., FinishWith(reactor, resp, [](Resp* resp, Resolved r) { ... }));
//     return reactor;
//   }
#pragma once

#include <grpcpp/grpcpp.h>

#include <utility>

#include "libs/common/callback.h"
#include "services/common/grpc_status.h"

namespace onestory::service {

// A Callback<T> that fills *response with `fill` on success and finishes the reactor with the
// converted status either way.
template <typename T, typename Response, typename Fill>
Callback<T> FinishWith(grpc::ServerUnaryReactor* reactor, Response* response, Fill fill) {
  return [reactor, response, fill = std::move(fill)](absl::StatusOr<T> result) mutable {
    if (!result.ok()) {
      reactor->Finish(ToGrpcStatus(result.status()));
      return;
    }
    fill(response, *std::move(result));
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace onestory::service
