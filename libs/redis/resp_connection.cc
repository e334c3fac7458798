#include "libs/redis/resp_connection.h"

#include <hiredis/hiredis.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/log.h"

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

void RespConnection::ReaderDeleter::operator()(void* reader) const {
  redisReaderFree(static_cast<redisReader*>(reader));
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
  redisContext* c = addr.unix_path.empty() ? redisConnectNonBlock(addr.host.c_str(), addr.port)
                                           : redisConnectUnixNonBlock(addr.unix_path.c_str());
  if (c == nullptr || c->err) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Lost(
        absl::UnavailableError(absl::StrCat("redis connect to ", options_.address, ": ", why)));
  }
  fd_ = redisFreeKeepFd(c);  // the socket is ours from here; hiredis's context is not needed
  reader_.reset(NewReplyReader());
  state_ = State::kConnecting;
  events_ = EPOLLOUT;  // writable once the connection is made (or failed)
  UpdateWatch();
  loop_->RunAfter(options_.connect_timeout, [this, gen, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired() || gen != generation_) return;
    if (state_ == State::kConnecting || state_ == State::kAuthenticating) {
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

void RespConnection::Append(const std::vector<std::string>& argv) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  int len = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (len > 0) out_.append(cmd, static_cast<size_t>(len));
  if (cmd != nullptr) redisFreeCommand(cmd);
}

void RespConnection::Flush() {
  while (!out_.empty() && fd_ >= 0) {
    ssize_t n = write(fd_, out_.data(), out_.size());
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return Lost(absl::UnavailableError(
        absl::StrCat("redis connection to ", options_.address, " write: ", strerror(errno))));
  }
  uint32_t want = EPOLLIN | (out_.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
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
  if (state_ != State::kConnecting) return Flush();
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    return Lost(absl::UnavailableError(
        absl::StrCat("redis connect to ", options_.address, ": ", strerror(err))));
  }
  Connected();
}

void RespConnection::OnReadable() {
  if (fd_ < 0) return;
  if (state_ == State::kConnecting) return OnWritable();  // an error or hang-up while connecting
  char buf[16384];
  std::optional<absl::Status> lost;
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n > 0) {
      redisReaderFeed(static_cast<redisReader*>(reader_.get()), buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof(buf)) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // The replies already read are handed over first: they arrived before the connection closed.
    lost = absl::UnavailableError(absl::StrCat("redis connection to ", options_.address, " ",
                                               n == 0 ? "closed" : strerror(errno)));
    break;
  }
  uint64_t current = generation_;
  for (;;) {
    if (current != generation_ || reader_ == nullptr) return;  // stopped by a callback
    void* r = nullptr;
    if (redisReaderGetReply(static_cast<redisReader*>(reader_.get()), &r) != REDIS_OK) {
      return Lost(absl::UnavailableError(
          absl::StrCat("redis connection to ", options_.address,
                       ": protocol error: ", static_cast<redisReader*>(reader_.get())->errstr)));
    }
    if (r == nullptr) break;
    std::unique_ptr<Reply> owned(static_cast<Reply*>(r));
    Reply reply = std::move(*owned);
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
