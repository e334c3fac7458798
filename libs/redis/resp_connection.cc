#include "libs/redis/resp_connection.h"

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"
#include "libs/redis/tls.h"

namespace onestory::redis {
absl::Status ParseAddress(const std::string& address, Address* out) {
  *out = Address();
  if (absl::StartsWith(address, "unix:")) {
    out->unix_path = address.substr(5);
  } else if (absl::StartsWith(address, "/")) {
    out->unix_path = address;
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(address.substr(colon + 1), &out->port) || out->port <= 0 ||
        out->port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis address '", address, "': expected host:port, unix:/path or /path"));
    }
    out->host = address.substr(0, colon);
    return absl::OkStatus();
  }
  if (out->unix_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("redis address '", address, "': empty path"));
  }
  return absl::OkStatus();
}

RespConnection::RespConnection(EventLoop* loop, Options options, std::string name,
                               Callbacks callbacks)
    : loop_(loop),
      options_(std::move(options)),
      name_(std::move(name)),
      callbacks_(std::move(callbacks)),
      backoff_(options_.reconnect_min) {}

RespConnection::~RespConnection() {
  // The owner stops it on the loop thread first; this is a last resort.
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
}

void RespConnection::Start() {
  if (state_ != State::kIdle) return;
  Connect();
}

void RespConnection::Stop() {
  state_ = State::kStopped;
  ++generation_;
  CloseSocket();
}

void RespConnection::CloseSocket() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    loop_->Watch(fd_, 0, this);
    close(fd_);
  }
  fd_ = -1;
  events_ = 0;
  out_.clear();
  reader_.reset();
  flush_scheduled_ = false;
}

void RespConnection::Connect() {
  uint64_t gen = ++generation_;
  Address addr;
  if (absl::Status st = ParseAddress(options_.address, &addr); !st.ok()) {
    return Lost(absl::UnavailableError(st.message()));
  }
  if (options_.tls != nullptr && !addr.unix_path.empty()) {
    return Lost(absl::UnavailableError(
        absl::StrCat("redis address '", options_.address, "': TLS needs host:port")));
  }
  redisContext* c = addr.unix_path.empty() ? redisConnectNonBlock(addr.host.c_str(), addr.port)
                                           : redisConnectUnixNonBlock(addr.unix_path.c_str());
  if (c == nullptr || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Lost(
        absl::UnavailableError(absl::StrCat("redis connect to ", options_.address, ": ", why)));
  }
  fd_ = redisFreeKeepFd(c);  // the socket is ours from here; hiredis's context is not needed
  host_ = addr.host;
  reader_ = std::make_unique<ReplyReader>();
  state_ = State::kConnecting;
  events_ = EPOLLOUT;  // writable once the connection is made (or failed)
  UpdateWatch();
  loop_->RunAfter(options_.connect_timeout, [this, gen, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired() || gen != generation_) return;
    if (state_ == State::kConnecting || state_ == State::kHandshaking ||
        state_ == State::kAuthenticating) {
      Lost(absl::UnavailableError(absl::StrCat("redis connect to ", options_.address,
                                               ": timed out after ",
                                               absl::FormatDuration(options_.connect_timeout))));
    }
  });
}

void RespConnection::Connected() {
  events_ = EPOLLIN;
  UpdateWatch();
  if (!options_.password.empty()) {
    // Nothing else is sent until Redis accepted the password: AUTH's answer is the first reply.
    state_ = State::kAuthenticating;
    std::vector<std::string> auth = {"AUTH"};
    if (!options_.user.empty()) auth.push_back(options_.user);
    auth.push_back(options_.password);
    Append(auth);
    Flush();
    return;
  }
  BecomeReady();
}

void RespConnection::BecomeReady() {
  state_ = State::kReady;
  backoff_ = options_.reconnect_min;
  if (was_ready_) ++reconnects_;
  was_ready_ = true;
  Log(LogLevel::kInfo, "redis.connected", {{"conn", name_}, {"addr", options_.address}});
  callbacks_.on_ready();
}

void RespConnection::Lost(const absl::Status& why) {
  if (state_ == State::kStopped) return;
  bool was_ready = state_ == State::kReady;
  CloseSocket();
  state_ = State::kIdle;
  last_error_ = why;
  Log(was_ready ? LogLevel::kWarning : LogLevel::kDebug, "redis.disconnected",
      {{"conn", name_}, {"reason", std::string(why.message())}});
  uint64_t gen = ++generation_;
  absl::Duration delay = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  loop_->RunAfter(delay, [this, gen, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired() && gen == generation_ && state_ == State::kIdle) Connect();
  });
  if (was_ready) callbacks_.on_lost(why);
}

bool RespConnection::Send(const std::vector<std::string>& argv) {
  if (state_ != State::kReady) return false;
  Append(argv);
  ScheduleFlush();
  return true;
}

void RespConnection::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  loop_->AtEndOfTurn([this, gen = generation_, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired() || gen != generation_) return;
    flush_scheduled_ = false;
    Flush();
  });
}

void AppendCommand(const std::vector<std::string>& argv, std::string* out) {
  constexpr size_t kMaxDigits = 20;  // of a size_t
  size_t bound = 1 + kMaxDigits + 2;
  for (const std::string& a : argv) bound += 1 + kMaxDigits + 2 + a.size() + 2;
  size_t start = out->size();
  out->resize(start + bound);  // cut to what was written below
  char* p = out->data() + start;
  auto line_end = [&p] {
    *p++ = '\r';
    *p++ = '\n';
  };
  auto header = [&p, &line_end](char type, size_t n) {
    *p++ = type;
    p = std::to_chars(p, p + kMaxDigits, n).ptr;
    line_end();
  };
  header('*', argv.size());
  for (const std::string& a : argv) {
    header('$', a.size());
    std::memcpy(p, a.data(), a.size());
    p += a.size();
    line_end();
  }
  out->resize(static_cast<size_t>(p - out->data()));
}

void RespConnection::Append(const std::vector<std::string>& argv) { AppendCommand(argv, &out_); }

RespConnection::Io RespConnection::WriteSome(size_t* written, std::string* why) {
  if (ssl_ == nullptr) {
    ssize_t n = write(fd_, out_.data(), out_.size());
    if (n > 0) *written = static_cast<size_t>(n);
    if (n > 0) return Io::kDone;
    if (n < 0 && errno == EINTR) return WriteSome(written, why);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Io::kWantWrite;
    *why = strerror(errno);
    return Io::kFailed;
  }
  int n = SSL_write(ssl_, out_.data(), static_cast<int>(std::min<size_t>(out_.size(), 1 << 30)));
  if (n > 0) *written = static_cast<size_t>(n);
  return n > 0 ? Io::kDone : TlsResult(n, why);
}

RespConnection::Io RespConnection::ReadSome(char* buf, size_t size, size_t* got, std::string* why) {
  if (ssl_ == nullptr) {
    ssize_t n = read(fd_, buf, size);
    if (n > 0) *got = static_cast<size_t>(n);
    if (n > 0) return Io::kDone;
    if (n == 0) return Io::kClosed;
    if (errno == EINTR) return ReadSome(buf, size, got, why);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Io::kWantRead;
    *why = strerror(errno);
    return Io::kFailed;
  }
  int n = SSL_read(ssl_, buf, static_cast<int>(size));
  if (n > 0) *got = static_cast<size_t>(n);
  return n > 0 ? Io::kDone : TlsResult(n, why);
}

RespConnection::Io RespConnection::TlsResult(int ret, std::string* why) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      *why = errno != 0 ? strerror(errno) : "closed";
      ERR_clear_error();
      return errno != 0 ? Io::kFailed : Io::kClosed;
    default: {
      long verify = SSL_get_verify_result(ssl_);  // NOLINT(runtime/int)
      *why = verify != X509_V_OK ? absl::StrCat("certificate verify failed: ",
                                                X509_verify_cert_error_string(verify))
                                 : TlsError();
      ERR_clear_error();
      return Io::kFailed;
    }
  }
}

void RespConnection::StartTls() {
  absl::StatusOr<SSL*> ssl = options_.tls->NewSession(fd_, host_);
  if (!ssl.ok()) return Lost(absl::UnavailableError(ssl.status().message()));
  ssl_ = *ssl;
  state_ = State::kHandshaking;
  Handshake();
}

void RespConnection::Handshake() {
  ERR_clear_error();
  int ret = SSL_connect(ssl_);
  if (ret == 1) return Connected();
  std::string why;
  switch (TlsResult(ret, &why)) {
    case Io::kWantRead:
      events_ = EPOLLIN;
      return UpdateWatch();
    case Io::kWantWrite:
      events_ = EPOLLOUT;
      return UpdateWatch();
    default:
      Log(LogLevel::kError, "redis.tls_failed",
          {{"conn", name_}, {"addr", options_.address}, {"error", why}});
      return Lost(absl::UnavailableError(
          absl::StrCat("redis TLS handshake with ", options_.address, ": ", why)));
  }
}

void RespConnection::Flush() {
  read_wants_flush_ = false;
  while (!out_.empty() && fd_ >= 0) {
    size_t written = 0;
    std::string why;
    ERR_clear_error();
    Io io = WriteSome(&written, &why);
    if (io == Io::kDone) {
      out_.erase(0, written);
      continue;
    }
    if (io == Io::kWantWrite) break;
    if (io == Io::kWantRead) {  // TLS: the write waits for the peer's data, then goes on
      read_wants_flush_ = true;
      break;
    }
    return Lost(absl::UnavailableError(absl::StrCat(
        "redis connection to ", options_.address, " write: ", io == Io::kClosed ? "closed" : why)));
  }
  uint32_t want =
      EPOLLIN | (out_.empty() || read_wants_flush_ ? 0u : static_cast<uint32_t>(EPOLLOUT));
  if (fd_ >= 0 && want != events_) {
    events_ = want;
    UpdateWatch();
  }
}

void RespConnection::UpdateWatch() {
  if (fd_ >= 0) loop_->Watch(fd_, events_, this);
}

void RespConnection::OnWritable() {
  if (fd_ < 0) return;
  if (state_ == State::kHandshaking) return Handshake();
  if (state_ != State::kConnecting) return Flush();
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    return Lost(absl::UnavailableError(
        absl::StrCat("redis connect to ", options_.address, ": ", strerror(err))));
  }
  if (options_.tls != nullptr) return StartTls();
  Connected();
}

void RespConnection::OnReadable() {
  if (fd_ < 0) return;
  if (state_ == State::kConnecting) return OnWritable();  // an error or hang-up while connecting
  if (state_ == State::kHandshaking) return Handshake();
  if (read_wants_flush_) Flush();
  if (fd_ < 0) return;
  char buf[16384];
  std::optional<absl::Status> lost;
  for (;;) {
    size_t got = 0;
    std::string why;
    ERR_clear_error();
    Io io = ReadSome(buf, sizeof(buf), &got, &why);
    if (io == Io::kDone) {
      reader_->Feed(buf, got);
      // A short read emptied the socket; TLS may still hold decrypted bytes, so it reads on.
      if (ssl_ == nullptr && got < sizeof(buf)) break;
      continue;
    }
    if (io == Io::kWantRead) break;
    if (io == Io::kWantWrite) {  // TLS: the read waits for our write (EPOLLOUT), then goes on
      events_ |= EPOLLOUT;
      UpdateWatch();
      break;
    }
    // The replies already read are handed over first: they arrived before the connection closed.
    lost = absl::UnavailableError(absl::StrCat("redis connection to ", options_.address, " ",
                                               io == Io::kClosed ? "closed" : why));
    break;
  }
  uint64_t current = generation_;
  for (;;) {
    if (current != generation_ || reader_ == nullptr) return;  // stopped by a callback
    absl::StatusOr<std::optional<Reply>> next =
        reader_->Next(state_ != State::kAuthenticating && callbacks_.in_place_next != nullptr &&
                      callbacks_.in_place_next());
    if (!next.ok()) {
      return Lost(
          absl::UnavailableError(absl::StrCat("redis connection to ", options_.address,
                                              ": protocol error: ", next.status().message())));
    }
    if (!next->has_value()) break;
    Reply reply = std::move(**next);
    if (state_ == State::kAuthenticating) {
      if (reply.type == Reply::Type::kError) {
        Log(LogLevel::kError, "redis.auth_failed", {{"conn", name_}, {"error", reply.str}});
        return Lost(absl::UnavailableError(absl::StrCat("redis AUTH: ", reply.str)));
      }
      BecomeReady();
      continue;
    }
    callbacks_.on_reply(std::move(reply));
  }
  if (lost.has_value() && current == generation_) Lost(*lost);
}

}  // namespace onestory::redis
