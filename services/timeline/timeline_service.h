// TimelineService over gRPC: Append and List hand off to libs/timeline; Watch is a server-
// streaming reactor fed by the WatchHub.
//
// Watch, step by step: resolve the customer; register with the hub (its first OnNotify arrives
// once the notify channel is subscribed, so nothing appended after that can be missed); find the
// start position (the cursor, the timeline's start, or its current head); then loop: read up to
// kWatchBatch events after the position, write them one at a time (gRPC flow control paces a
// slow client), advance the position, read again while anything is left or a notification came
// meanwhile. Memory per watcher: one batch of events at most, plus the reactor.
//
// A watcher that falls behind live by more than the lag limit (once caught up, its reads have
// kept finding a whole batch waiting for longer than that, or one write has waited that long) is
// ended with RESOURCE_EXHAUSTED naming the cursor to resume from; it is never silently skipped
// ahead.
#pragma once

#include <atomic>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/timeline/timeline_store.h"
#include "libs/timeline/watch_hub.h"
#include "onestory/v1/timeline.grpc.pb.h"
#include "services/common/auth.h"

namespace onestory::service {

class WatchReactor;

struct TimelineServiceOptions {
  absl::Duration watch_max_lag = absl::Seconds(10);
  // A watcher ended for lag gets its final status after its pending write; if its client reads
  // nothing more for this long, the call is cancelled to free its resources.
  absl::Duration watch_abandon_after = absl::Seconds(60);
  int watch_batch = 100;  // events read from Redis per step
};

class TimelineServiceImpl final : public v1::TimelineService::CallbackService {
 public:
  TimelineServiceImpl(timeline::TimelineStore* store, timeline::WatchHub* hub,
                      const Authenticator* auth, TimelineServiceOptions options = {});
  ~TimelineServiceImpl() override;

  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* ctx, const v1::AppendRequest* req,
                                   v1::AppendResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx, const v1::ListRequest* req,
                                 v1::ListResponse* resp) override;
  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(grpc::CallbackServerContext* ctx,
                                                     const v1::WatchRequest* req) override;

  // Ends every open Watch with UNAVAILABLE (clients resume from their cursor elsewhere). For a
  // clean shutdown, before grpc::Server::Shutdown. New watches are refused afterwards.
  void EndAllWatches();
  int64_t open_watches() const { return open_watches_.load(); }

 private:
  friend class WatchReactor;
  void Register(WatchReactor* w);
  void Unregister(WatchReactor* w);

  timeline::TimelineStore* store_;
  const Authenticator* auth_;
  timeline::WatchHub* hub_;
  TimelineServiceOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_set<WatchReactor*> watches_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> open_watches_{0};
};

}  // namespace onestory::service
