#include "services/identity/identity_service.h"

#include "services/common/unary.h"

namespace onestory::service {

using identity::IdentityStore;

grpc::ServerUnaryReactor* IdentityServiceImpl::Resolve(grpc::CallbackServerContext* ctx,
                                                       const v1::ResolveRequest* req,
                                                       v1::ResolveResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->Resolve(req->tenant(), req->identifier(), req->create_if_missing(),
                  RequestDeadline(ctx),
                  FinishWith<IdentityStore::Resolved>(
                      reactor, resp, [](v1::ResolveResponse* out, IdentityStore::Resolved r) {
                        out->set_customer_id(r.customer_id);
                        out->set_created(r.created);
                        *out->mutable_identifier() = std::move(r.identifier);
                      }));
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Link(grpc::CallbackServerContext* ctx,
                                                    const v1::LinkRequest* req,
                                                    v1::LinkResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->Link(req->tenant(), req->customer_id(), req->identifier(), RequestDeadline(ctx),
               FinishWith<IdentityStore::Linked>(
                   reactor, resp, [](v1::LinkResponse* out, IdentityStore::Linked r) {
                     *out->mutable_identifier() = std::move(r.identifier);
                     out->set_already_linked(r.already_linked);
                   }));
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::Unlink(grpc::CallbackServerContext* ctx,
                                                      const v1::UnlinkRequest* req,
                                                      v1::UnlinkResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->Unlink(req->tenant(), req->customer_id(), req->identifier(), RequestDeadline(ctx),
                 FinishWith<bool>(reactor, resp, [](v1::UnlinkResponse*, bool) {}));
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::GetProfile(grpc::CallbackServerContext* ctx,
                                                          const v1::GetProfileRequest* req,
                                                          v1::GetProfileResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  std::string tenant = req->tenant();
  absl::Time deadline = RequestDeadline(ctx);
  store_->ResolveRef(
      tenant, "customer", req->customer(), false, deadline,
      [this, reactor, resp, tenant, deadline](absl::StatusOr<IdentityStore::Resolved> who) {
        if (!who.ok()) return reactor->Finish(ToGrpcStatus(who.status()));
        store_->GetProfile(tenant, who->customer_id, deadline,
                           FinishWith<v1::Profile>(
                               reactor, resp, [](v1::GetProfileResponse* out, v1::Profile p) {
                                 *out->mutable_profile() = std::move(p);
                               }));
      });
  return reactor;
}

grpc::ServerUnaryReactor* IdentityServiceImpl::UpdateProfile(
    grpc::CallbackServerContext* ctx, const v1::UpdateProfileRequest* req,
    v1::UpdateProfileResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->UpdateProfile(req->tenant(), req->customer_id(), req->profile(), req->update_mask(),
                        RequestDeadline(ctx),
                        FinishWith<v1::Profile>(
                            reactor, resp, [](v1::UpdateProfileResponse* out, v1::Profile p) {
                              *out->mutable_profile() = std::move(p);
                            }));
  return reactor;
}

}  // namespace onestory::service
