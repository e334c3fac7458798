#include "services/privacy/privacy_service.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/common/audit_interceptor.h"
#include "services/common/grpc_status.h"
#include "services/common/unary.h"

namespace onestory::service {
namespace {

// How long one read of an export may take (the export as a whole has the call's deadline, if
// any).
constexpr absl::Duration kExportReadTimeout = absl::Seconds(30);

constexpr absl::string_view kEraseMethod = "onestory.v1.PrivacyService/EraseCustomer";
constexpr absl::string_view kExportMethod = "onestory.v1.PrivacyService/ExportCustomer";
constexpr absl::string_view kRedactMethod = "onestory.v1.PrivacyService/RedactEvent";

class ExportReactor final : public grpc::ServerWriteReactor<v1::ExportCustomerChunk> {
 public:
  ExportReactor(privacy::PrivacyStore* store, const Authenticator* auth, audit::AuditLog* audit,
                grpc::CallbackServerContext* ctx, const v1::ExportCustomerRequest& req)
      : store_(store), audit_(audit), req_(req) {
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

  void OnWriteDone(bool ok) override {
    std::optional<absl::Status> deferred;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      deferred.swap(deferred_);
    }
    if (deferred.has_value()) return Finish(ToGrpcStatus(*deferred));
    if (!ok) return End(absl::CancelledError("the client went away"));
    WriteNext();
  }

  void OnCancel() override { End(absl::CancelledError("export cancelled")); }

  void OnDone() override { Release(); }  // the reference gRPC held

 private:
  absl::Time ReadDeadline() const { return std::min(deadline_, absl::Now() + kExportReadTimeout); }

  void AddRef() {
    absl::MutexLock lock(&mu_);
    ++refs_;
  }
  void Release() {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  // Ends the stream once. gRPC forbids Finish while a write is outstanding: then the status
  // waits for OnWriteDone.
  void End(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      if (writing_) {
        deferred_ = status;
        return;
      }
    }
    Finish(ToGrpcStatus(status));
  }

  void OnHead(absl::StatusOr<privacy::PrivacyStore::ExportHead> head) {
    if (!head.ok()) return End(head.status());
    {
      absl::MutexLock lock(&mu_);
      head_ = *std::move(head);
      for (std::string& doc : head_.documents) queue_.push_back(std::move(doc));
      head_.documents.clear();
    }
    WriteNext();
  }

  void OnPage(absl::StatusOr<privacy::PrivacyStore::EventPage> page) {
    if (!page.ok()) return End(page.status());
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      events_ += page->count;
      after_ = page->last_stream_id;
      if (page->count > 0) queue_.push_back(std::move(page->document));
      if (page->count < privacy::kExportPageSize) {
        events_done_ = true;
        queue_.push_back(privacy::PrivacyStore::ExportEnd(head_, events_));
      }
    }
    WriteNext();
  }

  // Writes the next document, or reads the next page when none is waiting, or finishes.
  void WriteNext() {
    bool fetch = false;
    bool finish = false;
    std::string customer, after;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_ || fetching_) return;
      if (queue_.empty()) {
        if (events_done_) {
          finished_ = true;
          finish = true;
        } else {
          fetching_ = true;
          fetch = true;
          ++refs_;
          customer = head_.customer_id;
          after = after_;
        }
      } else {
        chunk_.set_json(std::move(queue_.front()));
        queue_.pop_front();
        writing_ = true;  // from here an End defers its Finish to OnWriteDone
      }
    }
    if (finish) return Finish(grpc::Status::OK);
    if (fetch) {
      store_->ExportEvents(req_.tenant(), customer, after, ReadDeadline(),
                           [this](absl::StatusOr<privacy::PrivacyStore::EventPage> page) {
                             OnPage(std::move(page));
                             Release();
                           });
      return;
    }
    StartWrite(&chunk_);
  }

  privacy::PrivacyStore* store_;
  audit::AuditLog* audit_;
  const v1::ExportCustomerRequest req_;
  absl::Time deadline_;
  absl::StatusOr<Caller> caller_;
  absl::Mutex mu_;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's; one more while a store call is out
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  bool events_done_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> deferred_ ABSL_GUARDED_BY(mu_);
  privacy::PrivacyStore::ExportHead head_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::string after_ ABSL_GUARDED_BY(mu_) = "0-0";
  int64_t events_ ABSL_GUARDED_BY(mu_) = 0;
  v1::ExportCustomerChunk chunk_;  // being written; gRPC reads it until OnWriteDone
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
