#include "services/case/case_service.h"

#include "services/common/unary.h"

namespace onestory::service {

using engagement::CaseStore;

grpc::ServerUnaryReactor* CaseServiceImpl::OpenCase(grpc::CallbackServerContext* ctx,
                                                    const v1::OpenCaseRequest* req,
                                                    v1::OpenCaseResponse* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::Open);
}

grpc::ServerUnaryReactor* CaseServiceImpl::UpdateCase(grpc::CallbackServerContext* ctx,
                                                      const v1::UpdateCaseRequest* req,
                                                      v1::UpdateCaseResponse* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::Update);
}

grpc::ServerUnaryReactor* CaseServiceImpl::ResolveCase(grpc::CallbackServerContext* ctx,
                                                       const v1::ResolveCaseRequest* req,
                                                       v1::ResolveCaseResponse* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::Resolve);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetCase(grpc::CallbackServerContext* ctx,
                                                   const v1::GetCaseRequest* req, v1::Case* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::Get);
}

grpc::ServerUnaryReactor* CaseServiceImpl::SetJourney(grpc::CallbackServerContext* ctx,
                                                      const v1::SetJourneyRequest* req,
                                                      v1::Journey* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::SetJourney);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetJourney(grpc::CallbackServerContext* ctx,
                                                      const v1::GetJourneyRequest* req,
                                                      v1::Journey* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::GetJourney);
}

grpc::ServerUnaryReactor* CaseServiceImpl::GetJourneyStats(grpc::CallbackServerContext* ctx,
                                                           const v1::GetJourneyStatsRequest* req,
                                                           v1::GetJourneyStatsResponse* resp) {
  return Forward(ctx, req, resp, store_, &CaseStore::GetJourneyStats);
}

}  // namespace onestory::service
