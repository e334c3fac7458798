// Writes the audit log (libs/audit): one entry per call to a onestory.v1 service, recorded when
// the call's status is sent (a server stream — Watch, WatchAlerts, ExportCustomer — also gets
// one with code STARTED when it opens), with the caller's key id, the method, the customer (by id;
// for a customer named by identifier only the identifier's type), the outcome and a detail without
// personal data (counts, the request's `reason`). Calls without a valid key are not written to
// any tenant's log (the tenant is unknown): they are counted in
// onestory_auth_rejected_total{reason} and logged at most once a second.
//
// The customer is read from the messages by field name through protobuf reflection: the
// response's `customer_id` (also inside a top-level message field, e.g. GetContext's profile),
// else the request's `customer` reference, `customer_id` or `target_customer_id`. A call that
// names no customer (a tenant setting, an alert list) is recorded without one.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include "libs/audit/audit_log.h"
#include "services/common/auth.h"

namespace onestory::service {

class AuditInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  AuditInterceptorFactory(const Authenticator* auth, audit::AuditLog* log)
      : auth_(auth), log_(log) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const Authenticator* auth_;
  audit::AuditLog* log_;
};

}  // namespace onestory::service
