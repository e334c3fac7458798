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

// A unary RPC answered by one store call that produces the response message itself:
//
//   return Forward(ctx, req, resp, store_, &CaseStore::Open);
template <typename Store, typename Request, typename Response>
grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* ctx, const Request* request,
                                  Response* response, Store* store,
                                  void (Store::*method)(const Request&, absl::Time,
                                                        Callback<Response>)) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  (store->*method)(*request, RequestDeadline(ctx),
                   FinishWith<Response>(reactor, response,
                                        [](Response* out, Response r) { *out = std::move(r); }));
  return reactor;
}

}  // namespace onestory::service
