#include "services/alert/alert_service.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "services/common/grpc_status.h"
#include "services/common/stream_writer.h"
#include "services/common/unary.h"

namespace onestory::service {

using engagement::AlertStore;

// Alerts are for the agents and supervisors who act on them.
const auth::ScopeSet kAlertScopes = {auth::Scope::kContextReadAgent,
                                     auth::Scope::kContextReadSupervisor};

// One WatchAlerts stream. Its position is one stream id per bucket of the tenant's alerts, after
// the last alert queued; a notify on any bucket's channel (or a subscription's confirmation)
// reads every bucket after it, merged (AlertStore::ReadAfter). References (StreamWriter's):
// gRPC's, the hub's (one per channel while registered) and one per Redis read in flight.
class AlertWatchReactor final : public StreamWriter<v1::Alert>,
                                public timeline::WatchHub::Listener {
 public:
  AlertWatchReactor(AlertServiceImpl* svc, grpc::CallbackServerContext* ctx,
                    const v1::WatchAlertsRequest& req)
      : StreamWriter(ctx), svc_(svc), tenant_(req.tenant()) {
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

  void OnNotify(absl::string_view) override {
    {
      absl::MutexLock lock(&mu_);
      dirty_ = true;
    }
    Pump();
  }
  void OnTick(absl::Time) override {}

 private:
  void OnStreamDone() override {
    svc_->Unregister(this);
    bool registered;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      registered = registered_;
    }
    if (registered) {
      for (const std::string& channel : AlertStore::Channels(tenant_)) {
        svc_->hub_->Remove(channel, this, [this] { Release(); });
      }
    }
  }

  void Subscribe(const timeline::BucketPositions& after) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || ended()) return;
      position_ = after;
      registered_ = true;
      for (const std::string& channel : AlertStore::Channels(tenant_)) {
        AddRef();  // the hub's, per channel
        // Under the lock, so OnDone's Removes are always posted after these Adds.
        svc_->hub_->Add(channel, this);
      }
    }
    Accept();
  }

  // Nothing left to write: reads the alerts after the position when a notify came.
  void OnDrained() override {
    timeline::BucketPositions after;
    {
      absl::MutexLock lock(&mu_);
      if (reading_ || !dirty_) return;
      dirty_ = false;
      reading_ = true;
      after = position_;
    }
    AddRef();
    svc_->store_->ReadAfter(tenant_, after, kBatch, absl::Now() + absl::Seconds(10),
                            [this](absl::StatusOr<AlertStore::Batch> batch) {
                              OnBatch(std::move(batch));
                              Release();
                            });
  }

  void OnBatch(absl::StatusOr<AlertStore::Batch> batch) {
    if (!batch.ok()) {
      // Redis is unreachable for a moment: read again on the next notify (the hub notifies
      // after it reconnects).
      absl::MutexLock lock(&mu_);
      reading_ = false;
      dirty_ = true;
      return;
    }
    // Queued before reading_ clears: no read after the new position starts before they are in.
    for (v1::Alert& a : batch->alerts) Send(std::move(a));
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      position_ = batch->positions;
      if (batch->more) dirty_ = true;
    }
    Pump();
  }

  static constexpr int kBatch = 100;
  AlertServiceImpl* svc_;
  const std::string tenant_;
  absl::Mutex mu_;
  timeline::BucketPositions position_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone came: no registration from here on
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
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
