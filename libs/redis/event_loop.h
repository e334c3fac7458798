// EventLoop: one thread running epoll, for the asynchronous Redis connections.
//
//   EventLoop loop;                       // starts its thread
//   loop.Post([] { /* runs on the loop thread */ });
//   loop.RunAfter(absl::Milliseconds(50), [] { /* timer, on the loop thread */ });
//
// hiredis contexts, their callbacks and timers all run on the loop thread, so the Redis layer
// needs no locks of its own. Post() and RunAfter() are thread-safe; Watch/Unwatch must be
// called on the loop thread. The destructor stops the thread; callbacks still queued are
// dropped.
#pragma once

#include <cstdint>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace onestory::redis {

class EventLoop {
 public:
  // Receives readiness events for a watched file descriptor.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnReadable() = 0;
    virtual void OnWritable() = 0;
  };

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs fn on the loop thread, soon. Thread-safe.
  void Post(absl::AnyInvocable<void()> fn);
  // Runs fn on the loop thread after delay. Thread-safe. Returns an id for Cancel().
  uint64_t RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn);
  // Cancels a timer that has not run yet. Loop thread only.
  void Cancel(uint64_t timer_id);

  // Sets which events (EPOLLIN / EPOLLOUT) fd is watched for; 0 removes it. Loop thread only.
  void Watch(int fd, uint32_t events, Handler* handler);

  // Runs fn at the end of this loop turn, after the posted tasks and timers: a connection
  // writes what the turn queued on it there, in one write, without waiting for EPOLLOUT.
  // Loop thread only.
  void AtEndOfTurn(absl::AnyInvocable<void()> fn) { end_of_turn_.push_back(std::move(fn)); }

  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Run();
  void Wake();
  // Whether a thread that just posted or set a timer must Wake the loop: it is waiting, or about
  // to wait, in epoll_wait. Clears the flag.
  bool WakeNeeded() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int NextTimeoutMs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool sleeping_ ABSL_GUARDED_BY(mu_) = false;  // in (or entering) epoll_wait with a timeout
  std::vector<absl::AnyInvocable<void()>> posted_ ABSL_GUARDED_BY(mu_);
  uint64_t next_timer_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Due time -> timer id; id -> callback.
  std::multimap<absl::Time, uint64_t> timers_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, absl::AnyInvocable<void()>> timer_fns_ ABSL_GUARDED_BY(mu_);
  std::map<int, uint32_t> watched_;                      // Loop thread only.
  std::vector<absl::AnyInvocable<void()>> end_of_turn_;  // Loop thread only.
  std::thread thread_;
};

}  // namespace onestory::redis
