// RespConnection: one Redis connection whose socket the event loop owns. Commands are written
// in RESP (those of one loop turn together, in one write, at the end of the turn), and every
// reply and push Redis sends is handed over in the order it arrived: the owner knows what it
// sent and matches the answers itself. Connection (connection.h) carries commands over it;
// ShardedSubscriber its `ssubscribe`, `sunsubscribe` and `smessage` arrays, which hiredis 0.14's
// asynchronous API cannot attribute.
//
//   RespConnection conn(loop, options, "shard-127.0.0.1:7001", {
//       .on_ready = [&] { conn.Send({"SSUBSCRIBE", "os:{t:c:cus_1}:n"}); },
//       .on_reply = [](Reply r) { /* every reply and push, in the order Redis sent */ },
//       .on_lost = [](const absl::Status& why) { /* it reconnects by itself */ }});
//   loop->Post([&] { conn.Start(); });
//
// Commands are written as RESP arrays of bulk strings (AppendCommand) and replies parsed by
// ReplyReader (RESP2, reply.h) straight into Reply values. The socket is connected without
// blocking (hiredis's redisConnectNonBlock, then the descriptor is kept and the hiredis context
// freed), with Options::tls the TLS handshake follows on the connected socket (OpenSSL, Redis's
// certificate verified, tls.h; a failure is logged as redis.tls_failed with the reason), AUTH
// is sent first when a password is configured (the connection is ready only once Redis
// accepted it), and it reconnects with the backoff of Options (reconnect_min doubling to
// reconnect_max) after a lost connection, Close, a refused AUTH or an attempt longer than
// connect_timeout. Send before on_ready is dropped.
//
// Loop thread only (construct anywhere). Destroy it only outside its own callbacks (post the
// destruction): the loop may still hold a readiness event for it in the current turn.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/redis/event_loop.h"
#include "libs/redis/options.h"
#include "libs/redis/reply.h"

struct ssl_st;

namespace onestory::redis {

// Splits an Options::address into host and port, or a unix socket path.
struct Address {
  std::string host;
  int port = 0;
  std::string unix_path;  // Set for unix sockets; host and port are then unused.
};
absl::Status ParseAddress(const std::string& address, Address* out);

// Appends argv to *out as Redis reads a command: "*<count>\r\n", then "$<length>\r\n<arg>\r\n"
// per argument (what hiredis's redisFormatCommandArgv writes, without its allocation and its
// sprintf per argument, about a tenth of the server's instructions per GetContext).
void AppendCommand(const std::vector<std::string>& argv, std::string* out);

class RespConnection : public EventLoop::Handler {
 public:
  struct Callbacks {
    // Connected (and authenticated): commands may be sent.
    absl::AnyInvocable<void()> on_ready;
    // Every reply and push Redis sends, in order (AUTH's answer excepted).
    absl::AnyInvocable<void(Reply reply)> on_reply;
    // A ready connection is gone (not called by Stop); a reconnect is scheduled. It is not
    // ready any more when this runs.
    absl::AnyInvocable<void(const absl::Status& why)> on_lost;
    // Optional: asked before each reply is read; true when that reply, if an array, is wanted
    // read in place, as Type::kArrayView (ReplyReader::Next's in_place).
    absl::AnyInvocable<bool()> in_place_next;
  };

  RespConnection(EventLoop* loop, Options options, std::string name, Callbacks callbacks);
  ~RespConnection() override;
  RespConnection(const RespConnection&) = delete;
  RespConnection& operator=(const RespConnection&) = delete;

  // Begins connecting.
  void Start();
  // Closes the socket and stops reconnecting.
  void Stop();
  // Closes the socket because of `why` (on_lost runs when it was ready) and reconnects.
  void Close(const absl::Status& why) { Lost(why); }
  // Queues argv, written at the end of this loop turn; false (nothing sent) when the connection
  // is not ready.
  bool Send(const std::vector<std::string>& argv);

  bool ready() const { return state_ == State::kReady; }
  const std::string& address() const { return options_.address; }
  const std::string& name() const { return name_; }
  const Options& options() const { return options_; }
  EventLoop* loop() const { return loop_; }
  const absl::Status& last_error() const { return last_error_; }
  uint64_t reconnects() const { return reconnects_; }

  void OnReadable() override;
  void OnWritable() override;

 private:
  enum class State { kIdle, kConnecting, kHandshaking, kAuthenticating, kReady, kStopped };
  // What a read or write on the socket (or TLS over it) did.
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };

  void Connect();
  // The socket is connected: AUTH, or ready at once.
  void Connected();
  void BecomeReady();
  void Lost(const absl::Status& why);
  void CloseSocket();
  void Flush();
  // The socket, or TLS over it: *written / *got bytes moved on kDone; *why on kFailed.
  Io WriteSome(size_t* written, std::string* why);
  Io ReadSome(char* buf, size_t size, size_t* got, std::string* why);
  // What SSL_get_error says of a TLS call that returned `ret`.
  Io TlsResult(int ret, std::string* why);
  // TCP is up and Options::tls is set: the TLS handshake, then Connected.
  void StartTls();
  void Handshake();
  // Flush at the end of this loop turn (once, however many commands the turn sends).
  void ScheduleFlush();
  void Append(const std::vector<std::string>& argv);
  void UpdateWatch();

  EventLoop* loop_;
  Options options_;
  std::string name_;
  Callbacks callbacks_;
  State state_ = State::kIdle;
  int fd_ = -1;
  std::string host_;               // the address's host, for TLS's name check
  ssl_st* ssl_ = nullptr;          // with Options::tls, once TCP is up
  bool read_wants_flush_ = false;  // a TLS write waits for readable
  uint32_t events_ = 0;
  std::unique_ptr<ReplyReader> reader_;  // while connected
  std::string out_;                      // formatted commands not yet written
  bool flush_scheduled_ = false;
  // Bumped per attempt; a stale timer compares it.
  uint64_t generation_ = 0;
  absl::Duration backoff_;
  absl::Status last_error_ = absl::UnavailableError("redis: not connected yet");
  uint64_t reconnects_ = 0;
  bool was_ready_ = false;
  // Timers hold a weak reference: one that fires after the connection is gone does nothing.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace onestory::redis
