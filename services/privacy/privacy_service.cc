#include "services/privacy/privacy_service.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/common/audit_interceptor.h"
#include "services/common/grpc_status.h"
#include "services/common/stream_writer.h"
#include "services/common/unary.h"

namespace onestory::service {
namespace {

// How long one read of an export may take (the export as a whole has the call's deadline, if
// any).
constexpr absl::Duration kExportReadTimeout = absl::Seconds(30);

constexpr absl::string_view kEraseMethod = "onestory.v1.PrivacyService/EraseCustomer";
constexpr absl::string_view kExportMethod = "onestory.v1.PrivacyService/ExportCustomer";
constexpr absl::string_view kRedactMethod = "onestory.v1.PrivacyService/RedactEvent";

// One ExportCustomer stream: the head documents (profile, identifiers, facts, ...), then the
// events page by page, then the closing document. References: gRPC's and one per store call out.
class ExportReactor final : public StreamWriter<v1::ExportCustomerChunk> {
 public:
  ExportReactor(privacy::PrivacyStore* store, const Authenticator* auth, audit::AuditLog* audit,
                grpc::CallbackServerContext* ctx, const v1::ExportCustomerRequest& req)
      : StreamWriter(ctx), store_(store), audit_(audit), req_(req) {
    // Read once, here: the context is not touched after the call starts.
    deadline_ = RequestDeadline(ctx, absl::InfiniteDuration());
    caller_ = auth->Check(*ctx, {auth::Scope::kPrivacyAdmin}, req.tenant());
  }

  void Begin() {
    if (!caller_.ok()) return End(caller_.status());
    AddRef();
    // Nothing is read before the export's entry is in the audit log.
    AuditBefore(audit_, store_->redactor(), *caller_, kExportMethod, req_, ReadDeadline(),
                [this](absl::Status st) {
                  if (!st.ok()) {
                    End(st);
                    return Release();
                  }
                  store_->ExportBegin(
                      req_, ReadDeadline(),
                      [this](absl::StatusOr<privacy::PrivacyStore::ExportHead> head) {
                        OnHead(std::move(head));
                        Release();
                      });
                });
  }

 private:
  absl::Time ReadDeadline() const { return std::min(deadline_, absl::Now() + kExportReadTimeout); }

  static v1::ExportCustomerChunk Chunk(std::string json) {
    v1::ExportCustomerChunk chunk;
    chunk.set_json(std::move(json));
    return chunk;
  }

  void OnHead(absl::StatusOr<privacy::PrivacyStore::ExportHead> head) {
    if (!head.ok()) return End(head.status());
    Accept();
    for (std::string& doc : head->documents) Send(Chunk(std::move(doc)));
    head->documents.clear();
    {
      // Only now: OnDrained reads no events before every head document is queued.
      absl::MutexLock lock(&mu_);
      head_ = *std::move(head);
    }
    Pump();  // asks for the first page once the head documents are written
  }

  void OnPage(absl::StatusOr<privacy::PrivacyStore::EventPage> page) {
    if (!page.ok()) return End(page.status());
    bool last = page->count < privacy::kExportPageSize;
    std::string end;
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      events_ += page->count;
      after_ = page->last_stream_id;
      events_done_ = last;
      if (last) end = privacy::PrivacyStore::ExportEnd(head_, events_);
    }
    if (page->count > 0) Send(Chunk(std::move(page->document)));
    if (last) {
      Send(Chunk(std::move(end)));
      return EndAfterQueued(absl::OkStatus());
    }
    Pump();
  }

  // Everything read so far is written: read the next page of events.
  void OnDrained() override {
    std::string customer, after;
    {
      absl::MutexLock lock(&mu_);
      if (fetching_ || events_done_ || head_.customer_id.empty()) return;
      fetching_ = true;
      customer = head_.customer_id;
      after = after_;
    }
    AddRef();
    store_->ExportEvents(req_.tenant(), customer, after, ReadDeadline(),
                         [this](absl::StatusOr<privacy::PrivacyStore::EventPage> page) {
                           OnPage(std::move(page));
                           Release();
                         });
  }

  privacy::PrivacyStore* store_;
  audit::AuditLog* audit_;
  const v1::ExportCustomerRequest req_;
  absl::Time deadline_;
  absl::StatusOr<Caller> caller_;
  absl::Mutex mu_;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  bool events_done_ ABSL_GUARDED_BY(mu_) = false;
  privacy::PrivacyStore::ExportHead head_ ABSL_GUARDED_BY(mu_);
  std::string after_ ABSL_GUARDED_BY(mu_) = "0-0";
  int64_t events_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerUnaryReactor* PrivacyServiceImpl::EraseCustomer(grpc::CallbackServerContext* ctx,
                                                            const v1::EraseCustomerRequest* req,
                                                            v1::EraseCustomerResponse* resp) {
  absl::StatusOr<Caller> caller = auth_->Check(*ctx, {auth::Scope::kPrivacyAdmin}, req->tenant());
  if (!caller.ok()) return Reject(ctx, caller.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Time deadline = RequestDeadline(ctx);
  AuditBefore(audit_, store_->redactor(), *caller, kEraseMethod, *req, deadline,
              [this, reactor, req, resp, deadline](absl::Status st) {
                if (!st.ok()) return reactor->Finish(ToGrpcStatus(st));
                store_->Erase(*req, deadline,
                              [this, reactor, resp](absl::StatusOr<v1::EraseCustomerResponse> r) {
                                if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                                *resp = *std::move(r);
                                if (on_removed_) on_removed_();
                                reactor->Finish(grpc::Status::OK);
                              });
              });
  return reactor;
}

grpc::ServerWriteReactor<v1::ExportCustomerChunk>* PrivacyServiceImpl::ExportCustomer(
    grpc::CallbackServerContext* ctx, const v1::ExportCustomerRequest* req) {
  auto* reactor = new ExportReactor(store_, auth_, audit_, ctx, *req);
  reactor->Begin();
  return reactor;
}

grpc::ServerUnaryReactor* PrivacyServiceImpl::RedactEvent(grpc::CallbackServerContext* ctx,
                                                          const v1::RedactEventRequest* req,
                                                          v1::RedactEventResponse* resp) {
  absl::StatusOr<Caller> caller = auth_->Check(*ctx, {auth::Scope::kPrivacyAdmin}, req->tenant());
  if (!caller.ok()) return Reject(ctx, caller.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::Time deadline = RequestDeadline(ctx);
  AuditBefore(audit_, store_->redactor(), *caller, kRedactMethod, *req, deadline,
              [this, reactor, req, resp, deadline](absl::Status st) {
                if (!st.ok()) return reactor->Finish(ToGrpcStatus(st));
                store_->Redact(*req, deadline,
                               [this, reactor, resp](absl::StatusOr<v1::RedactEventResponse> r) {
                                 if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                                 *resp = *std::move(r);
                                 if (on_removed_) on_removed_();
                                 reactor->Finish(grpc::Status::OK);
                               });
              });
  return reactor;
}

}  // namespace onestory::service
