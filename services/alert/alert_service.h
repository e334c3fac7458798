// AlertService over gRPC: ListAlerts and AckAlert are handed to libs/engagement's AlertStore;
// WatchAlerts is a write reactor woken through the WatchHub (the channels of the tenant's alert
// buckets) that reads every bucket's log from its own position, so no alert raised on any
// instance is missed.
#pragma once

#include <atomic>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "libs/engagement/alert_store.h"
#include "libs/timeline/watch_hub.h"
#include "onestory/v1/alert.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class AlertWatchReactor;

class AlertServiceImpl final : public v1::AlertService::CallbackService {
 public:
  AlertServiceImpl(engagement::AlertStore* store, timeline::WatchHub* hub,
                   const Authenticator* auth)
      : store_(store), auth_(auth), hub_(hub) {}

  grpc::ServerWriteReactor<v1::Alert>* WatchAlerts(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchAlertsRequest* req) override;
  grpc::ServerUnaryReactor* ListAlerts(grpc::CallbackServerContext* ctx,
                                       const v1::ListAlertsRequest* req,
                                       v1::ListAlertsResponse* resp) override;
  grpc::ServerUnaryReactor* AckAlert(grpc::CallbackServerContext* ctx,
                                     const v1::AckAlertRequest* req, v1::Alert* resp) override;

  // Ends every WatchAlerts stream with UNAVAILABLE (server shutdown).
  void EndAllWatches();

 private:
  friend class AlertWatchReactor;
  void Register(AlertWatchReactor* w);
  void Unregister(AlertWatchReactor* w);

  engagement::AlertStore* store_;
  const Authenticator* auth_;
  timeline::WatchHub* hub_;
  absl::Mutex mu_;
  absl::flat_hash_set<AlertWatchReactor*> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace onestory::service
