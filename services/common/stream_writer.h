// StreamWriter: the one server-streaming writer. Watch, WatchAlerts and ExportCustomer derive
// from it; it owns what they share:
//   - a queue of messages written in order, one write in flight at a time;
//   - ending once: End(status) drops what is queued and finishes now, or right after the write
//     in flight (gRPC forbids Finish while a write is outstanding); EndAfterQueued finishes after
//     the last queued message is written;
//   - Accept: the initial metadata sent once the stream is live (its start fixed, so whatever is
//     written after the client got it is streamed), carrying `onestory-stream: open`, so a
//     client (the HTTP gateway's Server-Sent Events bridge) knows the stream is live before its
//     first message (a stream refused at once also sends initial
//     metadata, with its status, but without that entry);
//   - references: gRPC's (until OnDone) plus one per callback the derived class has out
//     (AddRef before, Release in it); the last Release deletes the reactor.
// A derived class produces messages (Send) and is asked for more when the queue runs dry
// (OnDrained).
//
//   class Feed final : public StreamWriter<v1::Alert> {
//    public:
//     explicit Feed(grpc::CallbackServerContext* ctx) : StreamWriter(ctx) { Accept(); Pump(); }
//    private:
//     void OnDrained() override {
//       AddRef();
//       store->Read(..., [this](std::vector<v1::Alert> alerts) {
//         for (v1::Alert& a : alerts) Send(std::move(a));
//         Release();
//       });
//     }
//   };
//
// Every public method is thread-safe. The hooks run on whatever thread caused them, with no lock
// of this class held.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/common/grpc_status.h"

namespace onestory::service {

// The initial metadata entry of a stream that started (Accept).
inline constexpr absl::string_view kStreamOpen = "onestory-stream";

template <typename Message>
class StreamWriter : public grpc::ServerWriteReactor<Message> {
 public:
  void AddRef() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Ends the stream with `status` once; later calls do nothing. Queued messages are dropped.
  void End(const absl::Status& status) {
    bool finish_now;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;  // from here on no write starts, so writing_ only goes false
      queue_.clear();
      finish_now = !writing_;
      if (!finish_now) {
        deferred_ = status;
        end_requested_ = absl::Now();
      }
    }
    OnEnd(status);
    if (finish_now) this->Finish(ToGrpcStatus(status));
  }

  // Ends the stream with `status` once every message queued so far is written. Messages sent
  // after it are dropped.
  void EndAfterQueued(const absl::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_ || closing_.has_value()) return;
      closing_ = status;
    }
    Pump();
  }

  // Queues `message` and starts writing it when no other write is out. `mark` is handed back to
  // OnSent once the message is written (a stream position, say). Nothing when the stream ended.
  void Send(Message message, std::string mark = {}) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_ || closing_.has_value()) return;
      queue_.push_back(Out{std::move(message), std::move(mark)});
    }
    Pump();
  }

  // Sends the initial metadata now, marked `onestory-stream: open` (the stream is set up). Once
  // per stream; call it before the first Send.
  void Accept() {
    absl::MutexLock lock(&mu_);
    if (ended_ || metadata_sent_) return;
    metadata_sent_ = true;
    {
      absl::MutexLock ctx_lock(&ctx_mu_);
      if (ctx_ != nullptr) ctx_->AddInitialMetadata(std::string(kStreamOpen), "open");
    }
    // Under the lock, so no write can start before it (gRPC wants the metadata first).
    this->StartSendInitialMetadata();
  }

  bool ended() const {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

  // Nothing queued and no write out.
  bool idle() const {
    absl::MutexLock lock(&mu_);
    return queue_.empty() && !writing_;
  }

  // How long the write in flight has waited for the client; zero when none is out.
  absl::Duration WriteOutFor(absl::Time now) const {
    absl::MutexLock lock(&mu_);
    return writing_ ? now - write_started_ : absl::ZeroDuration();
  }

  // Ended more than `after` ago, but the last write still waits on a client that does not read:
  // cancels the call, so gRPC lets go of it.
  void CancelIfAbandoned(absl::Time now, absl::Duration after) {
    {
      absl::MutexLock lock(&mu_);
      if (!(ended_ && writing_ && deferred_.has_value() && now - end_requested_ > after)) return;
    }
    absl::MutexLock lock(&ctx_mu_);
    if (ctx_ != nullptr) ctx_->TryCancel();
  }

 protected:
  explicit StreamWriter(grpc::CallbackServerContext* ctx) : ctx_(ctx) {}
  ~StreamWriter() override = default;

  // Writes the next queued message when no write is out; with nothing queued, finishes a stream
  // closed by EndAfterQueued, or calls OnDrained.
  void Pump() {
    std::optional<absl::Status> finish;
    bool drained = false;
    {
      absl::MutexLock lock(&mu_);
      if (ended_ || writing_) return;
      if (queue_.empty()) {
        if (!closing_.has_value()) {
          drained = true;
        } else {
          ended_ = true;
          finish = *closing_;
        }
      } else {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        // With writing_ set, an End from now on defers its Finish to OnWriteDone, so starting the
        // write after unlocking cannot race a Finish.
        writing_ = true;
        metadata_sent_ = true;
        write_started_ = absl::Now();
      }
    }
    if (finish.has_value()) return this->Finish(ToGrpcStatus(*finish));
    if (drained) return OnDrained();
    this->StartWrite(&current_.message);
  }

  // `message` reached the client's transport (its OnWriteDone was ok).
  virtual void OnSent(const Message& message, const std::string& mark) {
    (void)message;
    (void)mark;
  }
  // Nothing is queued or being written, and the stream is open: produce more, if there is more.
  virtual void OnDrained() {}
  // End was called (once), with this status.
  virtual void OnEnd(const absl::Status& status) { (void)status; }
  // gRPC is done with the call (OnDone); gRPC's reference is released right after.
  virtual void OnStreamDone() {}

 private:
  struct Out {
    Message message;
    std::string mark;
  };

  void OnWriteDone(bool ok) final {
    std::optional<absl::Status> deferred;
    Out written;
    {
      absl::MutexLock lock(&mu_);
      // Moved out before writing_ goes false: a Pump on another thread may then fill current_.
      written = std::move(current_);
      writing_ = false;
      deferred.swap(deferred_);
    }
    if (deferred.has_value()) return this->Finish(ToGrpcStatus(*deferred));
    if (!ok) return End(absl::CancelledError("the client went away"));
    OnSent(written.message, written.mark);
    Pump();
  }

  void OnCancel() final { End(absl::CancelledError("the stream was cancelled")); }

  void OnDone() final {
    {
      absl::MutexLock lock(&ctx_mu_);
      ctx_ = nullptr;
    }
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
    }
    OnStreamDone();
    Release();  // gRPC's
  }

  std::atomic<int> refs_{1};  // gRPC's
  absl::Mutex ctx_mu_;
  grpc::CallbackServerContext* ctx_ ABSL_GUARDED_BY(ctx_mu_);  // valid until OnDone
  mutable absl::Mutex mu_;
  std::deque<Out> queue_ ABSL_GUARDED_BY(mu_);
  Out current_;  // the message being written; gRPC reads it until OnWriteDone
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool metadata_sent_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  absl::Time end_requested_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> deferred_ ABSL_GUARDED_BY(mu_);  // End with a write out
  std::optional<absl::Status> closing_ ABSL_GUARDED_BY(mu_);   // EndAfterQueued's status
};

}  // namespace onestory::service
