// Writes the audit log (libs/audit): one entry per call to a onestory.v1 service, recorded when
// the call's status is sent (a server stream — Watch, WatchAlerts, ExportCustomer — also gets
// one with code STARTED when it opens), with the caller's key id, the method, the customer (by id;
// for a customer named by identifier only the identifier's type), the outcome and a detail without
// personal data (counts, the request's `reason`). Calls without a valid key are not written to
// any tenant's log (the tenant is unknown): they are counted in
// onestory_auth_rejected_total{reason} and logged at most once a second.
//
// Calls refused by their key's rate limit are not written (a stream whose opening was written
// gets its end too): such a call read and changed nothing, and writing one entry per refused
// call would let the flood the limit stops fill the log all the same. They are counted in
// onestory_rate_limited_total{key} and logged at most once a second.
//
// Privileged calls (AuditedBeforeWork: erase, export, redact, merge, unmerge) have their handler
// write a STARTED entry with AuditBefore before doing anything and refuse the call with
// UNAVAILABLE when it cannot be written; their final entry is written here like any other (held
// and retried by the AuditLog when Redis refuses it). ListAuditEntries, though privacy.admin,
// reads the log itself (no customer data) and is audited like any read.
//
// The customer is read from the messages by field name through protobuf reflection: the
// response's `customer_id` (also inside a top-level message field, e.g. GetContext's profile),
// else the request's `customer` reference, `customer_id` or `target_customer_id`. A call that
// names no customer (a tenant setting, an alert list) is recorded without one.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/audit/audit_log.h"
#include "libs/privacy/redactor.h"
#include "services/common/auth.h"

namespace onestory::service {

// Whether `method` ("onestory.v1.PrivacyService/EraseCustomer") writes its STARTED entry with
// AuditBefore before acting.
bool AuditedBeforeWork(absl::string_view method);

// Writes the STARTED entry of `request`, a call to `method` by `caller` (already checked), then
// calls `then` with OK; when the entry cannot be written, `then` gets UNAVAILABLE saying why and
// the call must do nothing. With `log` null (no audit log), `then` gets OK at once. The
// request's reason is masked by `redactor` (privacy::OrCardsOnly: null masks card numbers only),
// the one the call's store masks its stored reason with.
void AuditBefore(audit::AuditLog* log, const privacy::Redactor* redactor, const Caller& caller,
                 absl::string_view method, const google::protobuf::Message& request,
                 absl::Time deadline, absl::AnyInvocable<void(absl::Status)> then);

class AuditInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `redactor`: the masking of the reasons written to the log, the server's storage redactor
  // (privacy::OrCardsOnly: null masks card numbers only). Not owned; must outlive the server.
  AuditInterceptorFactory(const Authenticator* auth, audit::AuditLog* log,
                          const privacy::Redactor* redactor = nullptr)
      : auth_(auth), log_(log), redactor_(redactor) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  const Authenticator* auth_;
  audit::AuditLog* log_;
  const privacy::Redactor* redactor_;
};

}  // namespace onestory::service
