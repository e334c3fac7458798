#include "services/timeline/timeline_service.h"

#include <atomic>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/event_validation.h"
#include "libs/timeline/stream_entry.h"
#include "services/common/grpc_status.h"
#include "services/common/stream_writer.h"
#include "services/common/unary.h"

namespace onestory::service {

using timeline::TimelineStore;

// One Watch stream. References (StreamWriter's): gRPC's, the hub's while registered on a
// channel, and one per Redis read in flight.
class WatchReactor final : public StreamWriter<v1::WatchResponse>,
                           public timeline::WatchHub::Listener {
 public:
  WatchReactor(TimelineServiceImpl* svc, grpc::CallbackServerContext* ctx,
               const v1::WatchRequest& req)
      : StreamWriter(ctx), svc_(svc), ctx_(ctx), req_(req) {}

  void Begin() {
    absl::StatusOr<v1::WatchRequest> allowed =
        // Any read scope: the audience is capped by it (a bot's key or token watches as a bot).
        AuthorizeRead(*svc_->auth_, *ctx_, AnyReadScope(), req_);
    if (!allowed.ok()) return End(allowed.status());
    req_ = *std::move(allowed);
    if (!req_.after_cursor().empty() && req_.from_start()) {
      return End(absl::InvalidArgumentError("from_start: cannot be combined with after_cursor"));
    }
    absl::StatusOr<v1::Audience> audience = timeline::ReaderAudience("audience", req_.audience());
    if (!audience.ok()) return End(audience.status());
    audience_ = *audience;
    AddRef();
    svc_->store_->identity()->ResolveRef(
        req_.tenant(), "customer", req_.customer(), false, absl::Now() + absl::Seconds(30),
        [this](absl::StatusOr<identity::IdentityStore::Resolved> who) {
          OnResolved(std::move(who));
          Release();
        });
  }

  // WatchHub::Listener (Redis loop thread).
  void OnNotify(absl::string_view message) override {
    if (ended()) return;
    if (std::optional<timeline::StreamEntryView> entry = timeline::PublishedEntry(message);
        entry.has_value() && SendPublished(*entry)) {
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      dirty_ = true;
      if (message == "unmerged" && followed_merge_) {
        // The customer this watch was asked for may no longer be this one: never show one
        // person's events to someone serving another.
        ending_unmerged_ = true;
      }
    }
    if (ending_unmerged_) {
      return End(
          absl::AbortedError("a merge this watch followed was undone; watch the customer again"));
    }
    Kick();
  }

  // Starts the next read if one is due: the head (for a watch without cursor) or the events
  // after the position.
  void Kick() {
    bool fetch_head = false;
    std::string customer;
    if (ended()) return;
    {
      absl::MutexLock lock(&mu_);
      if (!dirty_) return;
      if (need_head_ && !fetching_) {
        fetching_ = true;
        fetch_head = true;
        AddRef();
      }
      customer = customer_id_;
    }
    if (fetch_head) {
      svc_->store_->Head(req_.tenant(), customer, absl::Now() + absl::Seconds(30),
                         [this](absl::StatusOr<std::string> head) {
                           OnHead(std::move(head));
                           Release();
                         });
      return;
    }
    Pump();
  }

  void OnTick(absl::Time now) override {
    if (!ended() && WriteOutFor(now) > svc_->options_.watch_max_lag) End(FellBehind());
    Kick();  // retries a read that failed while Redis was unreachable
    CancelIfAbandoned(now, svc_->options_.watch_abandon_after);
  }

 private:
  // StreamWriter's hooks.
  void OnSent(const v1::WatchResponse& sent, const std::string& stream_id) override {
    (void)stream_id;
    absl::MutexLock lock(&mu_);
    last_cursor_ = sent.event().cursor();
  }

  void OnDrained() override { MaybeFetch(); }

  void OnEnd(const absl::Status& status) override {
    if (status.ok() || status.code() == absl::StatusCode::kCancelled) return;
    std::string customer;
    {
      absl::MutexLock lock(&mu_);
      customer = customer_id_;
    }
    Log(LogLevel::kDebug, "watch.ended",
        {{"customer", customer},
         {"code", absl::StatusCodeToString(status.code())},
         {"reason", std::string(status.message())}});
  }

  void OnStreamDone() override {
    svc_->Unregister(this);
    bool registered;
    std::string channel;
    {
      absl::MutexLock lock(&mu_);
      registered = registered_;
      done_ = true;
      channel = channel_;
    }
    if (registered) svc_->hub_->Remove(channel, this, [this] { Release(); });
  }

  absl::Status FellBehind() {
    absl::MutexLock lock(&mu_);
    return absl::ResourceExhaustedError(
        absl::StrCat("watcher fell more than ", absl::FormatDuration(svc_->options_.watch_max_lag),
                     " behind live; reconnect with after_cursor=",
                     last_cursor_.empty() ? "<the last cursor you received>" : last_cursor_));
  }

  // The customer named by the request may have been merged: watch the customer its merges
  // lead to (a from_start replay then covers the merged timeline).
  void OnResolved(absl::StatusOr<identity::IdentityStore::Resolved> who) {
    if (!who.ok()) return End(who.status());
    AddRef();
    svc_->store_->identity()->RootOf(
        req_.tenant(), who->customer_id, absl::Now() + absl::Seconds(30),
        [this, requested = who->customer_id](absl::StatusOr<std::string> root) {
          OnRoot(std::move(root), requested);
          Release();
        });
  }

  void OnRoot(absl::StatusOr<std::string> root, const std::string& requested) {
    if (!root.ok()) return End(root.status());
    if (*root != requested) {
      absl::MutexLock lock(&mu_);
      followed_merge_ = true;
    }
    if (req_.after_cursor().empty()) {
      return Begin(*root, req_.from_start() ? "0-0" : "", !req_.from_start());
    }
    auto cursor = timeline::DecodeAnyCursor("after_cursor", req_.after_cursor());
    if (!cursor.ok()) return End(cursor.status());
    if (cursor->first == *root) return Begin(*root, cursor->second, false);
    {
      absl::MutexLock lock(&mu_);
      followed_merge_ = true;
    }
    // A cursor of a customer merged into this one: its position is remapped by the read.
    AddRef();
    svc_->store_->identity()->RootOf(
        req_.tenant(), cursor->first, absl::Now() + absl::Seconds(30),
        [this, root = *root, cursor = *cursor](absl::StatusOr<std::string> cursor_root) {
          if (cursor_root.ok() && *cursor_root == root) {
            Begin(root, absl::StrCat(cursor.first, "|", cursor.second), false);
          } else {
            End(absl::InvalidArgumentError("after_cursor: the cursor belongs to another customer"));
          }
          Release();
        });
  }

  void Begin(const std::string& customer, const std::string& start, bool need_head) {
    if (ended()) return;
    absl::MutexLock lock(&mu_);
    if (done_) return;
    customer_id_ = customer;
    channel_ = keys::CustomerKeys(req_.tenant(), customer_id_).channel();
    position_ = start;
    need_head_ = need_head;
    registered_ = true;
    AddRef();  // held by the hub until Remove completes
    // Under the lock, so OnDone's Remove (which needs registered_) is always posted after this
    // Add. Add only posts to the loop: no lock is taken inside.
    svc_->hub_->Add(channel_, this);  // the first OnNotify starts reading
    // The stream is open (initial metadata) once its start is fixed: every event appended after
    // the client sees it is streamed. A watch of only new events fixes its start by reading the
    // head once subscribed (OnHead), so a client that appends right after the open sees its event.
    if (!need_head) Accept();
  }

  // True (and the read to be retried on the next tick) for a failure while Redis is briefly
  // unreachable: a watch rides out a Redis restart or failover shorter than the lag limit.
  bool RetryLater(const absl::Status& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (st.code() != absl::StatusCode::kUnavailable &&
        st.code() != absl::StatusCode::kDeadlineExceeded) {
      return false;
    }
    absl::Time now = absl::Now();
    if (unavailable_since_ == absl::InfiniteFuture()) unavailable_since_ = now;
    if (now - unavailable_since_ > svc_->options_.watch_max_lag) return false;
    dirty_ = true;
    return true;
  }

  // The watched customer was merged into another: continue with the target's events from
  // the merge on. Returns false when the status is not a merge redirect.
  bool FollowMerge(const absl::Status& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Not once the stream is done: its registration was removed for good (OnStreamDone).
    if (done_) return false;
    std::optional<identity::Moved> moved = identity::MovedTo(st);
    if (!moved || ++merge_hops_ > identity::kMaxMergeHops) return false;
    followed_merge_ = true;
    std::string old_channel = channel_;
    // Continue from the same place in the merged timeline (the source's events this watcher
    // has not seen yet were moved there too); a watcher that had no position yet starts at the
    // merge's head.
    if (need_head_ || position_.empty()) {
      position_ = moved->head;
      Accept();  // the start is fixed (a head read found the merge)
    } else if (position_ != "0-0" && position_.find('|') == std::string::npos) {
      position_ = absl::StrCat(customer_id_, "|", position_);
      position_from_merge_ = true;
    }  // else "0-0" (replay all) or already "<merged customer>|<id>", which merges carry along
    customer_id_ = moved->target;
    channel_ = keys::CustomerKeys(req_.tenant(), customer_id_).channel();
    need_head_ = false;
    dirty_ = true;
    Log(LogLevel::kInfo, "watch.follow_merge",
        {{"target", customer_id_}, {"merge_id", moved->merge_id}});
    AddRef();  // for the new registration; the old one's is released by its Remove
    svc_->hub_->Add(channel_, this);
    svc_->hub_->Remove(old_channel, this, [this] { Release(); });
    return true;
  }

  void OnHead(absl::StatusOr<std::string> head) {
    if (!head.ok()) {
      {
        absl::MutexLock lock(&mu_);
        fetching_ = false;
        if (RetryLater(head.status())) return;
        if (FollowMerge(head.status())) return;
      }
      return End(head.status());
    }
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      unavailable_since_ = absl::InfiniteFuture();
      need_head_ = false;
      position_ = *head;
      live_ = true;
      dirty_ = true;
    }
    Accept();
    Pump();
  }

  // Sends an entry an append published (timeline::PublishedEntry) without reading it back, when
  // the watch is caught up (live, nothing read, queued or being written, no message waiting for
  // a read) and the entry comes after the position. No entry can lie between the two: one
  // appended before the last read is in its batch (a full batch leaves the watch dirty), and one
  // appended after it was published on this channel before this entry, so its message came first
  // on the same subscription and was sent or marked the watch dirty. A new subscription (a
  // reconnect, a slot moved) marks the watch dirty before any message of its own. Ignores an
  // entry at or before the position (a read found it first). False when the watch must read.
  bool SendPublished(const timeline::StreamEntryView& entry) {
    std::string customer;
    {
      absl::MutexLock lock(&mu_);
      timeline::StreamId position, published;
      if (!live_ || dirty_ || fetching_ || need_head_ || !idle() ||
          !timeline::ParseStreamId(position_, &position) ||
          !timeline::ParseStreamId(entry.id, &published)) {
        return false;
      }
      if (!(position < published)) return true;
      // Held while the entry is queued, as for a batch read (OnBatch).
      fetching_ = true;
      position_ = std::string(entry.id);
      customer = customer_id_;
    }
    absl::Status sent = SendEntry(entry, customer);
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
    }
    if (!sent.ok()) End(sent);
    return true;
  }

  // Sends the entry's event unless the audience may not see it.
  absl::Status SendEntry(const timeline::StreamEntryView& entry, const std::string& customer) {
    ASSIGN_OR_RETURN(v1::Audience visibility, entry.Visibility());
    if (!timeline::VisibleTo(visibility, audience_)) return absl::OkStatus();
    v1::WatchResponse response;
    ASSIGN_OR_RETURN(*response.mutable_event(), entry.Event(customer));
    Send(std::move(response), std::string(entry.id));
    return absl::OkStatus();
  }

  void MaybeFetch() {
    std::string position;
    std::string customer;
    {
      absl::MutexLock lock(&mu_);
      if (fetching_ || need_head_ || !dirty_ || !idle() || ended()) return;
      dirty_ = false;
      fetching_ = true;
      AddRef();
      position = position_;
      customer = customer_id_;
    }
    svc_->store_->ReadAfter(req_.tenant(), customer, position, svc_->options_.watch_batch,
                            absl::Now() + absl::Seconds(30),
                            [this](absl::StatusOr<TimelineStore::Batch> batch) {
                              OnBatch(std::move(batch));
                              Release();
                            });
  }

  void OnBatch(absl::StatusOr<TimelineStore::Batch> batch) {
    bool fell_behind = false;
    bool following = false;
    std::vector<v1::WatchResponse> ready;
    std::vector<std::string> ready_ids;
    {
      absl::MutexLock lock(&mu_);
      // fetching_ stays set until the batch is queued: no read after the old position may start
      // before these events are in the queue.
      if (ended() || (!batch.ok() && RetryLater(batch.status()))) {
        fetching_ = false;
        return;
      }
      if (!batch.ok() && FollowMerge(batch.status())) {
        following = true;
      } else if (!batch.ok() && position_from_merge_ &&
                 batch.status().code() == absl::StatusCode::kInvalidArgument) {
        // The position this watch carried across a merge is not known to the target (its
        // event was given back by an earlier unmerge): go on from the target's head.
        Log(LogLevel::kWarning, "watch.merge_position_unknown", {{"customer", customer_id_}});
        position_from_merge_ = false;
        need_head_ = true;
        dirty_ = true;
        following = true;
      } else if (batch.ok()) {
        unavailable_since_ = absl::InfiniteFuture();
        // Events passed over (the audience may not see them) are not read again.
        position_ = batch->last_stream_id;
        // Behind live: reads of a watch that was caught up keep finding a whole batch waiting.
        // (Not judged by the events' stream ids: a merge gives the entries it brings ids just
        // after the target's newest, however old that is.)
        if (static_cast<int>(batch->events.size()) >= svc_->options_.watch_batch) {
          dirty_ = true;  // more may be waiting
          absl::Time now = absl::Now();
          if (behind_since_ == absl::InfiniteFuture()) behind_since_ = now;
          fell_behind = live_ && now - behind_since_ > svc_->options_.watch_max_lag;
        } else {
          live_ = true;
          behind_since_ = absl::InfiniteFuture();
        }
        for (size_t k = 0; k < batch->events.size() && !fell_behind; ++k) {
          if (!timeline::VisibleTo(batch->events[k].visibility(), audience_)) continue;
          *ready.emplace_back().mutable_event() = std::move(batch->events[k]);
          ready_ids.push_back(std::move(batch->stream_ids[k]));
        }
      }
    }
    for (size_t k = 0; k < ready.size(); ++k) Send(std::move(ready[k]), std::move(ready_ids[k]));
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
    }
    if (following) return Kick();
    if (!batch.ok()) return End(batch.status());
    if (fell_behind) return End(FellBehind());
    Pump();
  }

  TimelineServiceImpl* svc_;
  v1::Audience audience_ = v1::AUDIENCE_AGENT;  // set in Begin; events it may not see are skipped
  grpc::CallbackServerContext* const ctx_;      // read only in Begin(), while the call starts
  v1::WatchRequest req_;  // audience replaced by what the caller may read as, in Begin
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone came: no registration from here on
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool need_head_ ABSL_GUARDED_BY(mu_) = false;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time unavailable_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Since when each read has found a whole batch waiting; InfiniteFuture while caught up.
  absl::Time behind_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // The watched customer and its notify channel; they change when it is merged into another.
  std::string customer_id_ ABSL_GUARDED_BY(mu_);
  std::string channel_ ABSL_GUARDED_BY(mu_);
  int merge_hops_ ABSL_GUARDED_BY(mu_) = 0;
  bool followed_merge_ ABSL_GUARDED_BY(mu_) = false;       // watching a customer it was merged into
  bool position_from_merge_ ABSL_GUARDED_BY(mu_) = false;  // "<source>|<id>" set by FollowMerge
  std::atomic<bool> ending_unmerged_{false};
  // Where the next read starts: the last entry read (sent or passed over) or sent as published.
  std::string position_ ABSL_GUARDED_BY(mu_);
  std::string last_cursor_ ABSL_GUARDED_BY(mu_);
};

TimelineServiceImpl::TimelineServiceImpl(timeline::TimelineStore* store, timeline::WatchHub* hub,
                                         const Authenticator* auth, TimelineServiceOptions options)
    : store_(store), auth_(auth), hub_(hub), options_(options) {}

TimelineServiceImpl::~TimelineServiceImpl() = default;

grpc::ServerUnaryReactor* TimelineServiceImpl::Append(grpc::CallbackServerContext* ctx,
                                                      const v1::AppendRequest* req,
                                                      v1::AppendResponse* resp) {
  if (absl::Status st = auth_->Allow(*ctx, {auth::Scope::kTimelineWrite}, req->tenant());
      !st.ok()) {
    return Reject(ctx, st);
  }
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
  absl::StatusOr<v1::ListRequest> allowed =
      AuthorizeRead(*auth_, *ctx, {auth::Scope::kTimelineRead}, *req);
  if (!allowed.ok()) return Reject(ctx, allowed.status());
  auto* reactor = ctx->DefaultReactor();
  store_->List(
      *allowed, RequestDeadline(ctx),
      FinishWith<v1::ListResponse>(
          reactor, resp, [](v1::ListResponse* out, v1::ListResponse r) { *out = std::move(r); }));
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchResponse>* TimelineServiceImpl::Watch(
    grpc::CallbackServerContext* ctx, const v1::WatchRequest* req) {
  auto* w = new WatchReactor(this, ctx, *req);
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
