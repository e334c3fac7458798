// IdentityService over gRPC: a thin layer that hands each call to libs/identity.
#pragma once

#include "libs/identity/identity_store.h"
#include "onestory/v1/identity.grpc.pb.h"

namespace onestory::service {

class IdentityServiceImpl final : public v1::IdentityService::CallbackService {
 public:
  explicit IdentityServiceImpl(identity::IdentityStore* store) : store_(store) {}

  grpc::ServerUnaryReactor* Resolve(grpc::CallbackServerContext* ctx,
                                    const v1::ResolveRequest* req,
                                    v1::ResolveResponse* resp) override;
  grpc::ServerUnaryReactor* Link(grpc::CallbackServerContext* ctx, const v1::LinkRequest* req,
                                 v1::LinkResponse* resp) override;
  grpc::ServerUnaryReactor* Unlink(grpc::CallbackServerContext* ctx,
                                   const v1::UnlinkRequest* req,
                                   v1::UnlinkResponse* resp) override;
  grpc::ServerUnaryReactor* GetProfile(grpc::CallbackServerContext* ctx,
                                       const v1::GetProfileRequest* req,
                                       v1::GetProfileResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateProfile(grpc::CallbackServerContext* ctx,
                                          const v1::UpdateProfileRequest* req,
                                          v1::UpdateProfileResponse* resp) override;

 private:
  identity::IdentityStore* store_;
};

}  // namespace onestory::service
