// AuditService: reading the tenant's audit log (libs/audit). Every entry is written by
// AuditInterceptorFactory (services/common/audit_interceptor.h), not here.
#pragma once

#include "libs/audit/audit_log.h"
#include "onestory/v1/privacy.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  AuditServiceImpl(audit::AuditLog* log, const Authenticator* auth) : log_(log), auth_(auth) {}

  grpc::ServerUnaryReactor* ListAuditEntries(grpc::CallbackServerContext* ctx,
                                             const v1::ListAuditEntriesRequest* req,
                                             v1::ListAuditEntriesResponse* resp) override;

 private:
  audit::AuditLog* log_;
  const Authenticator* auth_;
};

}  // namespace onestory::service
