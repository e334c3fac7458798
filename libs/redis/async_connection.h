// AsyncConnection: one hiredis asynchronous connection on an EventLoop, with reconnection.
//
// Connects on Start(), reconnects with exponential backoff whenever the connection is lost or
// an attempt fails or takes longer than Options::connect_timeout, and sends AUTH first when a
// password is configured. Subclasses (Connection for commands, Subscriber for pub/sub) are told
// when the connection becomes ready and when it is lost. Everything here runs on the loop
// thread; nothing is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "libs/redis/event_loop.h"
#include "libs/redis/options.h"

struct redisAsyncContext;

namespace onestory::redis {

class AsyncConnection : public EventLoop::Handler {
 public:
  AsyncConnection(EventLoop* loop, Options options, std::string name);
  ~AsyncConnection() override;

  // Begins connecting. Loop thread only.
  void Start();
  // Closes the connection and stops reconnecting. Loop thread only.
  void Stop();

  bool ready() const { return state_ == State::kReady; }
  const absl::Status& last_error() const { return last_error_; }
  uint64_t reconnects() const { return reconnects_; }

  void OnReadable() override;
  void OnWritable() override;

 protected:
  // The connection is established (and AUTH, when configured, is queued ahead of everything).
  virtual void OnReady() = 0;
  // The connection is gone; every command sent on it has already been answered or failed.
  virtual void OnLost(const absl::Status& why) = 0;

  // Closes the connection because of `why` and schedules a reconnect.
  void CloseWithError(const absl::Status& why);

  redisAsyncContext* context() { return ac_; }
  EventLoop* loop() { return loop_; }
  const Options& options() const { return options_; }
  const std::string& name() const { return name_; }

 private:
  enum class State { kIdle, kConnecting, kReady, kStopped };

  void Connect();
  void HandleLost(const absl::Status& why, bool was_ready);
  // Connected (and, with a password, authenticated): commands may be sent; OnReady runs.
  void BecomeReady();
  void ScheduleReconnect();
  void UpdateWatch();

  static void OnConnectCallback(const redisAsyncContext* ac, int status);
  static void OnDisconnectCallback(const redisAsyncContext* ac, int status);
  static void AddRead(void* self);
  static void DelRead(void* self);
  static void AddWrite(void* self);
  static void DelWrite(void* self);
  static void Cleanup(void* self);

  // Writes what hiredis buffered (AddWrite on a ready connection defers it to the end of the
  // loop turn); only what the socket does not take waits for EPOLLOUT.
  void FlushWrites();

  EventLoop* loop_;
  Options options_;
  std::string name_;
  State state_ = State::kIdle;
  redisAsyncContext* ac_ = nullptr;
  int fd_ = -1;
  uint32_t events_ = 0;
  bool flush_scheduled_ = false;  // FlushWrites is due at the end of this loop turn
  bool flushing_ = false;         // inside FlushWrites
  uint64_t generation_ = 0;  // Bumped for every attempt; stale timers compare it.
  absl::Duration backoff_;
  absl::Status last_error_ = absl::UnavailableError("redis: not connected yet");
  uint64_t reconnects_ = 0;
  bool was_ready_ = false;
  // Timers hold a weak reference: one that fires after the connection is gone does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Splits an Options::address into host and port, or a unix socket path.
struct Address {
  std::string host;
  int port = 0;
  std::string unix_path;  // Set for unix sockets; host and port are then unused.
};
absl::Status ParseAddress(const std::string& address, Address* out);

}  // namespace onestory::redis
