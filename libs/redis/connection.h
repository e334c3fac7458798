// Connection: a pipelined command connection. Many commands may be in flight at once; replies
// come back in order. Each command carries a deadline: when it passes, the command's callback
// gets DEADLINE_EXCEEDED (the caller's deadline) or UNAVAILABLE (Options::command_timeout) at
// once, and its late reply is dropped. A connection whose oldest command is later than
// command_timeout is considered stuck and is closed and reopened. Loop thread only.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/async_connection.h"
#include "libs/redis/reply.h"

namespace onestory::redis {

// Receives one command's reply. Error replies arrive as a Reply of Type::kError (the caller
// decides what they mean); transport failures and timeouts as a status.
using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>)>;

class Connection : public AsyncConnection {
 public:
  Connection(EventLoop* loop, Options options, std::string name);

  // Sends a command. The connection must be ready(). `caller_deadline` is the request's own
  // deadline (absl::InfiniteFuture() for none).
  void Send(const std::vector<std::string>& argv, absl::Time caller_deadline, ReplyCallback cb);

  size_t in_flight() const { return in_flight_; }

  // Fails overdue commands; closes the connection if it is stuck. Called by the Client's timer.
  void CheckTimeouts(absl::Time now);

 protected:
  void OnReady() override {}
  void OnLost(const absl::Status& why) override;

 private:
  struct Pending {
    ReplyCallback cb;
    absl::Time sent;
    absl::Time deadline;
    bool callers_deadline;  // deadline is the caller's, not command_timeout
    bool done = false;
  };
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);

  std::deque<Pending> pending_;
  size_t in_flight_ = 0;  // pending_ entries not yet done
};

}  // namespace onestory::redis
