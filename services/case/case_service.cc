#include "services/case/case_service.h"

#include "services/common/auth.h"
#include "services/common/unary.h"

namespace onestory::service {

using engagement::CaseStore;

grpc::ServerUnaryReactor* CaseServiceImpl::OpenCase(grpc::CallbackServerContext* ctx,
                                                    const v1::OpenCaseRequest* req,
                                                    v1::OpenCaseResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &CaseStore::Open);
}

grpc::ServerUnaryReactor* CaseServiceImpl::UpdateCase(grpc::CallbackServerContext* ctx,
                                                      const v1::UpdateCaseRequest* req,
                                                      v1::UpdateCaseResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &CaseStore::Update);
}

grpc::ServerUnaryReactor* CaseServiceImpl::ResolveCase(grpc::CallbackServerContext* ctx,
                                                       const v1::ResolveCaseRequest* req,
                                                       v1::ResolveCaseResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &CaseStore::Resolve);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetCase(grpc::CallbackServerContext* ctx,
                                                   const v1::GetCaseRequest* req, v1::Case* resp) {
  absl::StatusOr<v1::GetCaseRequest> allowed = AuthorizeRead(*auth_, *ctx, AnyReadScope(), *req);
  if (!allowed.ok()) return Reject(ctx, allowed.status());
  return Forward(ctx, &*allowed, resp, store_, &CaseStore::Get);
}

grpc::ServerUnaryReactor* CaseServiceImpl::SetJourney(grpc::CallbackServerContext* ctx,
                                                      const v1::SetJourneyRequest* req,
                                                      v1::Journey* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTenantAdmin}, req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &CaseStore::SetJourney);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetJourney(grpc::CallbackServerContext* ctx,
                                                      const v1::GetJourneyRequest* req,
                                                      v1::Journey* resp) {
  if (absl::Status st = auth_->Allow(*ctx, AnyReadScope(), req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &CaseStore::GetJourney);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetJourneyStats(grpc::CallbackServerContext* ctx,
                                                           const v1::GetJourneyStatsRequest* req,
                                                           v1::GetJourneyStatsResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, AnyReadScope(), req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &CaseStore::GetJourneyStats);
}

}  // namespace onestory::service
