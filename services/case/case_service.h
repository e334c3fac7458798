// CaseService over gRPC: hands each call to libs/engagement's CaseStore.
#pragma once

#include "libs/engagement/case_store.h"
#include "onestory/v1/case.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class CaseServiceImpl final : public v1::CaseService::CallbackService {
 public:
  CaseServiceImpl(engagement::CaseStore* store, const Authenticator* auth)
      : store_(store), auth_(auth) {}

  grpc::ServerUnaryReactor* OpenCase(grpc::CallbackServerContext* ctx,
                                     const v1::OpenCaseRequest* req,
                                     v1::OpenCaseResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateCase(grpc::CallbackServerContext* ctx,
                                       const v1::UpdateCaseRequest* req,
                                       v1::UpdateCaseResponse* resp) override;
  grpc::ServerUnaryReactor* ResolveCase(grpc::CallbackServerContext* ctx,
                                        const v1::ResolveCaseRequest* req,
                                        v1::ResolveCaseResponse* resp) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* ctx, const v1::GetCaseRequest* req,
                                    v1::Case* resp) override;
  grpc::ServerUnaryReactor* SetJourney(grpc::CallbackServerContext* ctx,
                                       const v1::SetJourneyRequest* req,
                                       v1::Journey* resp) override;
  grpc::ServerUnaryReactor* GetJourney(grpc::CallbackServerContext* ctx,
                                       const v1::GetJourneyRequest* req,
                                       v1::Journey* resp) override;
  grpc::ServerUnaryReactor* GetJourneyStats(grpc::CallbackServerContext* ctx,
                                            const v1::GetJourneyStatsRequest* req,
                                            v1::GetJourneyStatsResponse* resp) override;

 private:
  engagement::CaseStore* store_;
  const Authenticator* auth_;
};

}  // namespace onestory::service
