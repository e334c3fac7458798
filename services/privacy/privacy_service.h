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
// Every handler checks the caller first (services/common/auth.h): scope privacy.admin.
#pragma once

#include "libs/privacy/privacy_store.h"
#include "onestory/v1/privacy.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class PrivacyServiceImpl final : public v1::PrivacyService::CallbackService {
 public:
  PrivacyServiceImpl(privacy::PrivacyStore* store, const Authenticator* auth)
      : store_(store), auth_(auth) {}

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
};

}  // namespace onestory::service
