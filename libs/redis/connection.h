// Connection: a pipelined command connection. Many commands may be in flight at once; replies
// come back in order. Each command carries a deadline: when it passes, the command's callback
// gets DEADLINE_EXCEEDED (the caller's deadline) or UNAVAILABLE (Options::command_timeout) at
// once, and its late reply is dropped. A connection whose oldest command is later than
// command_timeout is considered stuck and is closed and reopened.
//
// With Options::wait_replicas > 0 the connection confirms its writes (IsWriteCommand,
// command_keys.h): every write is followed on it by `WAIT <replicas> <ms>`, sent once the
// writes of the current loop turn are out, so the writes in flight together share one WAIT and
// one round trip to the replicas. WAIT counts what this connection wrote before it, so it must
// go on the same connection. A write's callback gets its reply once the WAIT answers: the
// reply when enough replicas confirmed, else UNAVAILABLE (stored on the primary, not on enough
// replicas: retry with the same ids); an error reply (MOVED, a Lua error) at once. While a WAIT
// blocks, Redis runs nothing else of this connection, so commands sent meanwhile are held here,
// in order, and sent together when it answers; a caller's deadline passing meanwhile fails them
// unsent. Reads should use a connection without wait_replicas (the Client and ClusterRouter
// keep one set of each). Loop thread only.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/redis/event_loop.h"
#include "libs/redis/options.h"
#include "libs/redis/reply.h"
#include "libs/redis/resp_connection.h"

namespace onestory::redis {

// Receives one command's reply. Error replies arrive as a Reply of Type::kError (the caller
// decides what they mean); transport failures and timeouts as a status.
using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<Reply>)>;

class Connection {
 public:
  Connection(EventLoop* loop, Options options, std::string name);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Begins connecting; it reconnects by itself (resp_connection.h). Loop thread only.
  void Start() { conn_.Start(); }
  // Closes the connection, fails what is in flight ("client stopped") and stops reconnecting.
  // Loop thread only.
  void Stop();
  bool ready() const { return conn_.ready(); }
  const absl::Status& last_error() const { return conn_.last_error(); }
  uint64_t reconnects() const { return conn_.reconnects(); }

  // Sends a command. The connection must be ready(). `caller_deadline` is the request's own
  // deadline (absl::InfiniteFuture() for none). With `in_place`, an array reply comes read
  // in place, as Type::kArrayView.
  void Send(const std::vector<std::string>& argv, absl::Time caller_deadline, ReplyCallback cb,
            bool in_place = false);
  // Sends `commands` as one transaction: MULTI, the commands, EXEC. Redis runs them together,
  // nothing else between them. cb gets EXEC's answer (one reply per command), or, when Redis
  // refused a command as it was queued (MOVED, ASK, TRYAGAIN, a wrong argument count), that
  // refusal, and nothing ran. Reads only: the connection must not wait for replicas. With
  // `in_place`, EXEC's array comes read in place, as Type::kArrayView.
  void SendTransaction(const std::vector<std::vector<std::string>>& commands,
                       absl::Time caller_deadline, ReplyCallback cb, bool in_place = false);

  size_t in_flight() const { return in_flight_; }
  // True when this connection confirms its writes with WAIT (Options::wait_replicas > 0).
  bool waits_for_replicas() const { return options().wait_replicas > 0; }

  // Fails overdue commands; closes the connection if it is stuck. Called by the Client's timer.
  void CheckTimeouts(absl::Time now);

 private:
  enum class Kind {
    kCommand,  // answered with its reply
    kWrite,    // wait_replicas: its reply waits for the next WAIT's answer
    kWait,     // the WAIT after writes (no callback of its own)
    kQueued,   // MULTI and the commands it queued: OK / QUEUED, or a refusal kept for the EXEC
  };
  struct Pending {
    ReplyCallback cb;
    absl::Time sent;
    absl::Time deadline;
    bool callers_deadline = false;  // deadline is the caller's, not command_timeout
    bool done = false;
    bool in_place = false;  // an array reply wanted as Type::kArrayView
    Kind kind = Kind::kCommand;
    Reply reply;                           // kWrite, once answered
    std::shared_ptr<std::string> refusal;  // kQueued: the transaction's first refusal
    int queued = 0;  // kQueued: the replies still to come (MULTI's OK, a QUEUED per command)
  };
  // A command held while a WAIT blocks the connection.
  struct Held {
    std::vector<std::string> argv;
    Pending pending;
  };
  // The next reply, in the order the commands were sent.
  void OnReply(Reply reply);
  // The connection is gone: every command in flight fails with why.
  void OnLost(const absl::Status& why);
  // Queues argv on the connection; false when it is not ready.
  bool Write(const std::vector<std::string>& argv) { return conn_.Send(argv); }
  EventLoop* loop() { return conn_.loop(); }
  const Options& options() const { return conn_.options(); }
  const std::string& name() const { return conn_.name(); }
  void Enqueue(const std::vector<std::string>& argv, Pending p);
  // Sends the WAIT for the writes sent since the last one.
  void SendWait();
  // The WAIT answered (or failed): delivers the writes it covers, sends what was held.
  void OnWaitReply(absl::StatusOr<Reply> r, absl::Duration timeout);
  // Fails every write waiting for a WAIT and every held command with why.
  void FailWaiting(const absl::Status& why);

  RespConnection conn_;
  std::deque<Pending> pending_;
  size_t in_flight_ = 0;  // pending_, answered_ and held_ entries not yet done
  // wait_replicas: writes answered and waiting for the WAIT sent after them, in order.
  std::deque<Pending> answered_;
  std::deque<Held> held_;                        // sent once the WAIT in flight answers
  bool wait_in_flight_ = false;                  // a WAIT was sent and has not answered
  bool wait_posted_ = false;                     // SendWait is posted to run after this loop turn
  int unwaited_writes_ = 0;                      // writes sent since the last WAIT
  absl::Time wait_by_ = absl::InfiniteFuture();  // earliest caller deadline among them
  absl::Duration wait_timeout_;                  // of the WAIT in flight
};

}  // namespace onestory::redis
