#include "services/timeline/timeline_service.h"

#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/timeline/cursor.h"
#include "services/common/grpc_status.h"
#include "services/common/unary.h"

namespace onestory::service {

using timeline::TimelineStore;

class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchResponse>,
                           public timeline::WatchHub::Listener {
 public:
  WatchReactor(TimelineServiceImpl* svc, const v1::WatchRequest& req)
      : svc_(svc), req_(req) {}

  void Begin() {
    if (absl::Status st = ValidateTenant(req_.tenant()); !st.ok()) return End(st);
    if (!req_.after_cursor().empty() && req_.from_start()) {
      return End(absl::InvalidArgumentError(
          "from_start: cannot be combined with after_cursor"));
    }
    AddRef();
    svc_->store_->identity()->ResolveRef(
        req_.tenant(), "customer", req_.customer(), false, absl::Now() + absl::Seconds(30),
        [this](absl::StatusOr<identity::IdentityStore::Resolved> who) {
          OnResolved(std::move(who));
          Release();
        });
  }

  // Finishes the stream once; later calls do nothing. Thread-safe.
  void End(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    if (!status.ok() && status.code() != absl::StatusCode::kCancelled) {
      Log(LogLevel::kDebug, "watch.ended",
          {{"customer", customer_id_}, {"code", absl::StatusCodeToString(status.code())},
           {"reason", std::string(status.message())}});
    }
    Finish(ToGrpcStatus(status));
  }

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

  // WatchHub::Listener (Redis loop thread).
  void OnNotify() override {
    bool fetch_head = false;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      dirty_ = true;
      if (need_head_ && !fetching_) {
        fetching_ = true;
        fetch_head = true;
        ++refs_;
      }
    }
    if (fetch_head) {
      svc_->store_->Head(req_.tenant(), customer_id_, absl::Now() + absl::Seconds(30),
                         [this](absl::StatusOr<std::string> head) {
                           OnHead(std::move(head));
                           Release();
                         });
      return;
    }
    MaybeFetch();
  }

  void OnTick(absl::Time now) override {
    bool stalled;
    {
      absl::MutexLock lock(&mu_);
      stalled = !finished_ && writing_ && now - write_started_ > svc_->options_.watch_max_lag;
    }
    if (stalled) End(FellBehind());
  }

  // gRPC reactions.
  void OnWriteDone(bool ok) override {
    if (!ok) return End(absl::CancelledError("the client went away"));
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      position_ = sent_stream_id_;
      last_cursor_ = current_.event().cursor();
    }
    WriteNext();
  }

  void OnCancel() override { End(absl::CancelledError("watch cancelled")); }

  void OnDone() override {
    svc_->Unregister(this);
    bool registered;
    {
      absl::MutexLock lock(&mu_);
      registered = registered_;
      finished_ = true;
    }
    if (registered) svc_->hub_->Remove(channel_, this, [this] { Release(); });
    Release();  // the reference gRPC held
  }

 private:
  struct Pending {
    std::string stream_id;
    v1::Event event;
  };

  absl::Status FellBehind() {
    absl::MutexLock lock(&mu_);
    return absl::ResourceExhaustedError(absl::StrCat(
        "watcher fell more than ", absl::FormatDuration(svc_->options_.watch_max_lag),
        " behind live; reconnect with after_cursor=",
        last_cursor_.empty() ? "<the last cursor you received>" : last_cursor_));
  }

  void OnResolved(absl::StatusOr<identity::IdentityStore::Resolved> who) {
    if (!who.ok()) return End(who.status());
    std::string start;
    bool need_head = false;
    if (!req_.after_cursor().empty()) {
      absl::StatusOr<std::string> sid =
          timeline::DecodeCursor("after_cursor", req_.after_cursor(), who->customer_id);
      if (!sid.ok()) return End(sid.status());
      start = *sid;
    } else if (req_.from_start()) {
      start = "0-0";
    } else {
      need_head = true;
    }
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      customer_id_ = who->customer_id;
      channel_ = keys::CustomerKeys(req_.tenant(), customer_id_).channel();
      position_ = start;
      need_head_ = need_head;
      registered_ = true;
      ++refs_;  // held by the hub until Remove completes
    }
    svc_->hub_->Add(channel_, this);  // the first OnNotify starts reading
  }

  void OnHead(absl::StatusOr<std::string> head) {
    if (!head.ok()) {
      {
        absl::MutexLock lock(&mu_);
        fetching_ = false;
      }
      return End(head.status());
    }
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      need_head_ = false;
      position_ = *head;
      live_ = true;
      dirty_ = true;
    }
    MaybeFetch();
  }

  void MaybeFetch() {
    std::string position;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || fetching_ || writing_ || !queue_.empty() || need_head_ || !dirty_) return;
      dirty_ = false;
      fetching_ = true;
      ++refs_;
      position = position_;
    }
    svc_->store_->ReadAfter(req_.tenant(), customer_id_, position, svc_->options_.watch_batch,
                            absl::Now() + absl::Seconds(30),
                            [this](absl::StatusOr<TimelineStore::Batch> batch) {
                              OnBatch(std::move(batch));
                              Release();
                            });
  }

  void OnBatch(absl::StatusOr<TimelineStore::Batch> batch) {
    bool fell_behind = false;
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      if (finished_) return;
      if (batch.ok()) {
        if (batch->events.empty()) {
          live_ = true;
        } else {
          absl::Time appended = absl::FromUnixMillis(ToMillis(batch->events[0].appended_at()));
          fell_behind = live_ && absl::Now() - appended > svc_->options_.watch_max_lag;
          if (static_cast<int>(batch->events.size()) >= svc_->options_.watch_batch) {
            dirty_ = true;  // more may be waiting
          } else {
            live_ = true;
          }
          for (auto& e : batch->events) {
            absl::StatusOr<std::string> sid =
                timeline::DecodeCursor("cursor", e.cursor(), customer_id_);
            queue_.push_back(Pending{sid.ok() ? *sid : position_, std::move(e)});
          }
        }
      }
    }
    if (!batch.ok()) return End(batch.status());
    if (fell_behind) return End(FellBehind());
    WriteNext();
  }

  void WriteNext() {
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      if (!queue_.empty()) {
        Pending next = std::move(queue_.front());
        queue_.pop_front();
        *current_.mutable_event() = std::move(next.event);
        sent_stream_id_ = std::move(next.stream_id);
        writing_ = true;
        write_started_ = absl::Now();
        write = true;
      }
    }
    if (write) {
      StartWrite(&current_);
    } else {
      MaybeFetch();
    }
  }

  TimelineServiceImpl* svc_;
  const v1::WatchRequest req_;
  absl::Mutex mu_;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's; more while Redis calls or the hub hold it
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool need_head_ ABSL_GUARDED_BY(mu_) = false;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  std::string customer_id_;  // set once before the hub or Redis see this watcher
  std::string channel_;
  std::string position_ ABSL_GUARDED_BY(mu_);        // stream id of the last event sent
  std::string sent_stream_id_ ABSL_GUARDED_BY(mu_);  // of the event being written
  std::string last_cursor_ ABSL_GUARDED_BY(mu_);
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  v1::WatchResponse current_;  // the message being written; gRPC reads it until OnWriteDone
};

TimelineServiceImpl::TimelineServiceImpl(timeline::TimelineStore* store, timeline::WatchHub* hub,
                                         TimelineServiceOptions options)
    : store_(store), hub_(hub), options_(options) {}

TimelineServiceImpl::~TimelineServiceImpl() = default;

grpc::ServerUnaryReactor* TimelineServiceImpl::Append(grpc::CallbackServerContext* ctx,
                                                      const v1::AppendRequest* req,
                                                      v1::AppendResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->Append(*req, RequestDeadline(ctx),
                 FinishWith<v1::AppendResponse>(
                     reactor, resp,
                     [](v1::AppendResponse* out, v1::AppendResponse r) { *out = std::move(r); }));
  return reactor;
}

grpc::ServerUnaryReactor* TimelineServiceImpl::List(grpc::CallbackServerContext* ctx,
                                                    const v1::ListRequest* req,
                                                    v1::ListResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  store_->List(*req, RequestDeadline(ctx),
               FinishWith<v1::ListResponse>(
                   reactor, resp,
                   [](v1::ListResponse* out, v1::ListResponse r) { *out = std::move(r); }));
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchResponse>* TimelineServiceImpl::Watch(
    grpc::CallbackServerContext*, const v1::WatchRequest* req) {
  auto* w = new WatchReactor(this, *req);
  Register(w);
  return w;
}

void TimelineServiceImpl::Register(WatchReactor* w) {
  bool refuse;
  {
    absl::MutexLock lock(&mu_);
    refuse = shutting_down_;
    if (!refuse) {
      watches_.insert(w);
      ++open_watches_;
    }
  }
  if (refuse) {
    w->End(absl::UnavailableError("server is shutting down; watch another instance"));
  } else {
    w->Begin();
  }
}

void TimelineServiceImpl::Unregister(WatchReactor* w) {
  absl::MutexLock lock(&mu_);
  if (watches_.erase(w) > 0) --open_watches_;
}

void TimelineServiceImpl::EndAllWatches() {
  std::vector<WatchReactor*> open;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (WatchReactor* w : watches_) {
      w->AddRef();  // kept alive while ended below, outside the lock
      open.push_back(w);
    }
  }
  for (WatchReactor* w : open) {
    w->End(absl::UnavailableError(
        "server is shutting down; reconnect with after_cursor set to the last cursor received"));
    w->Release();
  }
}

}  // namespace onestory::service
