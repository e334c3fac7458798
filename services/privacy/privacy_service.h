// PrivacyService over gRPC: EraseCustomer and RedactEvent hand off to libs/privacy;
// ExportCustomer is a server-streaming reactor that reads the export a part at a time.
//
//   PrivacyServiceImpl privacy(&privacy_store, auth);
//   builder.RegisterService(&privacy);
//
// ExportCustomer, step by step: read the profile, conversations, cases and facts (one script),
// write those documents one at a time, then read the timeline a page of kExportPageSize events
// at a time, each page read only once the previous document was written (OnWriteDone: gRPC flow
// control paces a slow client, and memory per export is one page), and end with the counts.
// No thread waits on Redis.
//
// Every handler checks the caller first (services/common/auth.h): scope privacy.admin. Then it
// writes the call's STARTED audit entry (AuditBefore) and acts only once that entry is stored:
// a call that cannot be audited is refused with UNAVAILABLE and does nothing.
//
// After an erase or a redaction that removed something, `on_removed` runs (without blocking the
// answer): the server schedules a rewrite of Redis's append-only file there, which is where the
// removed text otherwise stays (see services/common/aof_rewrite.h).
#pragma once

#include <functional>

#include "libs/audit/audit_log.h"
#include "libs/privacy/privacy_store.h"
#include "onestory/v1/privacy.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class PrivacyServiceImpl final : public v1::PrivacyService::CallbackService {
 public:
  PrivacyServiceImpl(privacy::PrivacyStore* store, const Authenticator* auth,
                     audit::AuditLog* audit = nullptr, std::function<void()> on_removed = {})
      : store_(store), auth_(auth), audit_(audit), on_removed_(std::move(on_removed)) {}

  grpc::ServerUnaryReactor* EraseCustomer(grpc::CallbackServerContext* ctx,
                                          const v1::EraseCustomerRequest* req,
                                          v1::EraseCustomerResponse* resp) override;
  grpc::ServerWriteReactor<v1::ExportCustomerChunk>* ExportCustomer(
      grpc::CallbackServerContext* ctx, const v1::ExportCustomerRequest* req) override;
  grpc::ServerUnaryReactor* RedactEvent(grpc::CallbackServerContext* ctx,
                                        const v1::RedactEventRequest* req,
                                        v1::RedactEventResponse* resp) override;

 private:
  privacy::PrivacyStore* store_;
  const Authenticator* auth_;
  audit::AuditLog* audit_;
  std::function<void()> on_removed_;
};

}  // namespace onestory::service
