#include "services/audit/audit_service.h"

#include "services/common/unary.h"

namespace onestory::service {

grpc::ServerUnaryReactor* AuditServiceImpl::ListAuditEntries(grpc::CallbackServerContext* ctx,
                                                             const v1::ListAuditEntriesRequest* req,
                                                             v1::ListAuditEntriesResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kPrivacyAdmin}, req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, log_, &audit::AuditLog::List);
}

}  // namespace onestory::service
