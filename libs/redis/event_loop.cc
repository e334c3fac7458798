#include "libs/redis/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/time/clock.h"
#include "libs/common/log.h"

namespace onestory::redis {

EventLoop::EventLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    Log(LogLevel::kError, "event_loop.create_failed", {{"errno", std::to_string(errno)}});
    std::abort();
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up descriptor
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  thread_ = std::thread([this] { Run(); });
}

EventLoop::~EventLoop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::Post(absl::AnyInvocable<void()> fn) {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back(std::move(fn));
    wake = WakeNeeded();
  }
  if (wake) Wake();
}

uint64_t EventLoop::RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) {
  uint64_t id;
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    id = next_timer_id_++;
    timers_.emplace(absl::Now() + delay, id);
    timer_fns_.emplace(id, std::move(fn));
    wake = WakeNeeded();
  }
  if (wake) Wake();
  return id;
}

void EventLoop::Cancel(uint64_t timer_id) {
  absl::MutexLock lock(&mu_);
  timer_fns_.erase(timer_id);  // the stale entry in timers_ is skipped when it comes due
}

void EventLoop::Watch(int fd, uint32_t events, Handler* handler) {
  auto it = watched_.find(fd);
  if (events == 0) {
    if (it != watched_.end()) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      watched_.erase(it);
    }
    return;
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (it == watched_.end()) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    watched_.emplace(fd, events);
  } else if (it->second != events) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
    it->second = events;
  }
}

bool EventLoop::WakeNeeded() {
  // Awake, the loop runs what was posted and looks at the timers before it waits again.
  bool was_sleeping = sleeping_;
  sleeping_ = false;  // one wake-up is enough
  return was_sleeping;
}

void EventLoop::Wake() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

int EventLoop::NextTimeoutMs() {
  if (!posted_.empty()) return 0;
  if (timers_.empty()) return 1000;
  absl::Duration wait = timers_.begin()->first - absl::Now();
  if (wait <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(wait)) + 1;
}

void EventLoop::Run() {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  std::vector<absl::AnyInvocable<void()>> batch;
  for (;;) {
    int timeout;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      timeout = NextTimeoutMs();
      sleeping_ = timeout != 0;
    }
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    {
      absl::MutexLock lock(&mu_);
      sleeping_ = false;
    }
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<Handler*>(events[i].data.ptr);
      if (handler == nullptr) {
        uint64_t count;
        ssize_t ignored = read(wake_fd_, &count, sizeof(count));
        (void)ignored;
        continue;
      }
      uint32_t ev = events[i].events;
      // A handler may stop watching (or close) its descriptor from OnReadable; it is expected
      // to ignore a following OnWritable in that case.
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) handler->OnReadable();
      if (ev & EPOLLOUT) handler->OnWritable();
    }
    // Timers that are due.
    for (;;) {
      absl::AnyInvocable<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        if (timers_.empty() || timers_.begin()->first > absl::Now()) break;
        uint64_t id = timers_.begin()->second;
        timers_.erase(timers_.begin());
        auto it = timer_fns_.find(id);
        if (it == timer_fns_.end()) continue;
        fn = std::move(it->second);
        timer_fns_.erase(it);
      }
      fn();
    }
    {
      absl::MutexLock lock(&mu_);
      batch.swap(posted_);
    }
    for (auto& fn : batch) fn();
    batch.clear();
    // What these scheduled may schedule more (a write that fails runs callbacks that send).
    while (!end_of_turn_.empty()) {
      batch.swap(end_of_turn_);
      for (auto& fn : batch) fn();
      batch.clear();
    }
  }
}

}  // namespace onestory::redis
