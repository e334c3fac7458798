#include "services/alert/alert_service.h"

#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "services/common/grpc_status.h"
#include "services/common/unary.h"

namespace onestory::service {

using engagement::AlertStore;

// Alerts are for the agents and supervisors who act on them.
const auth::ScopeSet kAlertScopes = {auth::Scope::kContextReadAgent,
                                     auth::Scope::kContextReadSupervisor};

// One WatchAlerts stream. Its position is one stream id per bucket of the tenant's alerts, after
// the last alert queued; a notify on any bucket's channel (or a subscription's confirmation)
// reads every bucket after it, merged (AlertStore::ReadAfter). References: gRPC's (until
// OnDone), the hub's (one per channel while registered) and one per Redis read in flight; the
// last Release deletes it.
class AlertWatchReactor final : public grpc::ServerWriteReactor<v1::Alert>,
                                public timeline::WatchHub::Listener {
 public:
  AlertWatchReactor(AlertServiceImpl* svc, grpc::CallbackServerContext* ctx,
                    const v1::WatchAlertsRequest& req)
      : svc_(svc), tenant_(req.tenant()) {
    svc_->Register(this);
    if (absl::Status st = svc_->auth_->Allow(*ctx, kAlertScopes, req.tenant()); !st.ok()) {
      End(st);
      return;
    }
    absl::StatusOr<std::optional<timeline::BucketPositions>> start = AlertStore::StartAfter(req);
    if (!start.ok()) {
      End(start.status());
      return;
    }
    if (start->has_value()) {
      Subscribe(**start);
      return;
    }
    // Live only: start after the newest alert now; the subscription's first notify then
    // catches anything raised in between.
    AddRef();
    svc_->store_->Head(tenant_, absl::Now() + absl::Seconds(10),
                       [this](absl::StatusOr<timeline::BucketPositions> head) {
                         if (!head.ok()) {
                           End(head.status());
                         } else {
                           Subscribe(*head);
                         }
                         Release();
                       });
  }

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

  void OnNotify(absl::string_view) override {
    {
      absl::MutexLock lock(&mu_);
      dirty_ = true;
    }
    Pump();
  }
  void OnTick(absl::Time) override {}

  void AddRef() { refs_.fetch_add(1); }
  void Release() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  void OnWriteDone(bool ok) override {
    std::optional<absl::Status> deferred;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok && !queue_.empty()) queue_.pop_front();
      deferred.swap(deferred_);
    }
    if (deferred.has_value()) return Finish(ToGrpcStatus(*deferred));
    if (!ok) return End(absl::CancelledError("the client went away"));
    Pump();
  }

  void OnCancel() override { End(absl::CancelledError("watch cancelled")); }

  void OnDone() override {
    svc_->Unregister(this);
    bool registered;
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      registered = registered_;
    }
    if (registered) {
      for (const std::string& channel : AlertStore::Channels(tenant_)) {
        svc_->hub_->Remove(channel, this, [this] { Release(); });
      }
    }
    Release();  // gRPC's
  }

 private:
  void Subscribe(const timeline::BucketPositions& after) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      position_ = after;
      registered_ = true;
    }
    for (const std::string& channel : AlertStore::Channels(tenant_)) {
      AddRef();  // the hub's, per channel
      svc_->hub_->Add(channel, this);
    }
  }

  // Writes the next queued alert, or reads more when the queue is empty and a notify came.
  void Pump() {
    std::optional<timeline::BucketPositions> after;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_ || reading_) return;
      if (!queue_.empty()) {
        writing_ = true;
        current_ = queue_.front();
      } else if (dirty_) {
        dirty_ = false;
        reading_ = true;
        after = position_;
      } else {
        return;
      }
    }
    if (after.has_value()) return Read(*after);
    StartWrite(&current_);
  }

  void Read(const timeline::BucketPositions& after) {
    AddRef();
    svc_->store_->ReadAfter(tenant_, after, kBatch, absl::Now() + absl::Seconds(10),
                            [this](absl::StatusOr<AlertStore::Batch> batch) {
                              bool failed = !batch.ok();
                              {
                                absl::MutexLock lock(&mu_);
                                reading_ = false;
                                if (!failed) {
                                  for (v1::Alert& a : batch->alerts) queue_.push_back(std::move(a));
                                  position_ = batch->positions;
                                  if (batch->more) dirty_ = true;
                                }
                              }
                              if (failed) {
                                // Redis is unreachable for a moment: read again on the next notify
                                // (the hub notifies after it reconnects).
                                absl::MutexLock lock(&mu_);
                                dirty_ = true;
                              } else {
                                Pump();
                              }
                              Release();
                            });
  }

  static constexpr int kBatch = 100;
  AlertServiceImpl* svc_;
  const std::string tenant_;
  std::atomic<int> refs_{1};  // gRPC's
  absl::Mutex mu_;
  std::deque<v1::Alert> queue_ ABSL_GUARDED_BY(mu_);
  v1::Alert current_;  // the alert being written
  timeline::BucketPositions position_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> deferred_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerWriteReactor<v1::Alert>* AlertServiceImpl::WatchAlerts(
    grpc::CallbackServerContext* ctx, const v1::WatchAlertsRequest* req) {
  return new AlertWatchReactor(this, ctx, *req);
}

grpc::ServerUnaryReactor* AlertServiceImpl::ListAlerts(grpc::CallbackServerContext* ctx,
                                                       const v1::ListAlertsRequest* req,
                                                       v1::ListAlertsResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, kAlertScopes, req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &AlertStore::List);
}

grpc::ServerUnaryReactor* AlertServiceImpl::AckAlert(grpc::CallbackServerContext* ctx,
                                                     const v1::AckAlertRequest* req,
                                                     v1::Alert* resp) {
  if (absl::Status st = auth_->Allow(*ctx, kAlertScopes, req->tenant()); !st.ok()) {
    return Reject(ctx, st);
  }
  return Forward(ctx, req, resp, store_, &AlertStore::Ack);
}

void AlertServiceImpl::Register(AlertWatchReactor* w) {
  absl::MutexLock lock(&mu_);
  watches_.insert(w);
}

void AlertServiceImpl::Unregister(AlertWatchReactor* w) {
  absl::MutexLock lock(&mu_);
  watches_.erase(w);
}

void AlertServiceImpl::EndAllWatches() {
  std::vector<AlertWatchReactor*> open;
  {
    absl::MutexLock lock(&mu_);
    for (AlertWatchReactor* w : watches_) {
      w->AddRef();  // kept alive while ended below, outside the lock
      open.push_back(w);
    }
  }
  for (AlertWatchReactor* w : open) {
    w->End(absl::UnavailableError(
        "server is shutting down; reconnect with after_cursor set to the last cursor received"));
    w->Release();
  }
}

}  // namespace onestory::service
