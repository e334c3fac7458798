#include "libs/redis/async_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/epoll.h>

#include <algorithm>

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

AsyncConnection::AsyncConnection(EventLoop* loop, Options options, std::string name)
    : loop_(loop),
      options_(std::move(options)),
      name_(std::move(name)),
      backoff_(options_.reconnect_min) {}

AsyncConnection::~AsyncConnection() {
  // The owner calls Stop() on the loop thread before destroying; this is a last resort.
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
  }
}

void AsyncConnection::Start() {
  if (state_ != State::kIdle) return;
  Connect();
}

void AsyncConnection::Stop() {
  State before = state_;
  state_ = State::kStopped;
  ++generation_;
  if (ac_ != nullptr && before != State::kIdle) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    last_error_ = absl::UnavailableError("redis: client stopped");
    redisAsyncFree(ac);  // fails pending commands through their callbacks
    OnLost(last_error_);
  }
}

void AsyncConnection::Connect() {
  ++generation_;
  Address addr;
  if (absl::Status st = ParseAddress(options_.address, &addr); !st.ok()) {
    HandleLost(absl::UnavailableError(st.message()), false);
    return;
  }
  redisAsyncContext* ac = addr.unix_path.empty() ? redisAsyncConnect(addr.host.c_str(), addr.port)
                                                 : redisAsyncConnectUnix(addr.unix_path.c_str());
  state_ = State::kConnecting;
  if (ac == nullptr || ac->err) {
    std::string why = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    HandleLost(
        absl::UnavailableError(absl::StrCat("redis connect to ", options_.address, ": ", why)),
        false);
    return;
  }
  ac_ = ac;
  fd_ = ac->c.fd;
  events_ = 0;
  ac->data = this;
  ac->ev.data = this;
  ac->ev.addRead = &AddRead;
  ac->ev.delRead = &DelRead;
  ac->ev.addWrite = &AddWrite;
  ac->ev.delWrite = &DelWrite;
  ac->ev.cleanup = &Cleanup;
  redisAsyncSetDisconnectCallback(ac, &OnDisconnectCallback);
  redisAsyncSetConnectCallback(ac, &OnConnectCallback);  // watches for writability
  uint64_t gen = generation_;
  loop_->RunAfter(options_.connect_timeout, [this, gen, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired() && gen == generation_ && state_ == State::kConnecting) {
      CloseWithError(absl::UnavailableError(
          absl::StrCat("redis connect to ", options_.address, ": timed out after ",
                       absl::FormatDuration(options_.connect_timeout))));
    }
  });
}

void AsyncConnection::OnConnectCallback(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<AsyncConnection*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback returns.
    self->ac_ = nullptr;
    self->HandleLost(absl::UnavailableError(absl::StrCat("redis connect to ",
                                                         self->options_.address, ": ", ac->errstr)),
                     false);
    return;
  }
  if (self->options_.password.empty()) {
    self->BecomeReady();
    return;
  }
  // With a password the connection counts as up only once Redis accepted it: until then no
  // command is sent on it and health does not say SERVING (a wrong password never does). A
  // missing answer is the connect timeout's to handle (the state is still kConnecting).
  std::vector<const char*> argv = {"AUTH"};
  std::vector<size_t> lens = {4};
  if (!self->options_.user.empty()) {
    argv.push_back(self->options_.user.c_str());
    lens.push_back(self->options_.user.size());
  }
  argv.push_back(self->options_.password.c_str());
  lens.push_back(self->options_.password.size());
  redisAsyncCommandArgv(
      self->ac_,
      [](redisAsyncContext* c, void* r, void*) {
        auto* reply = static_cast<redisReply*>(r);
        auto* s = static_cast<AsyncConnection*>(c->data);
        if (reply == nullptr || s == nullptr || s->ac_ != c) return;  // freed meanwhile
        if (reply->type != REDIS_REPLY_ERROR) {
          s->BecomeReady();
          return;
        }
        Log(LogLevel::kError, "redis.auth_failed", {{"error", std::string(reply->str)}});
        // Close after this callback returns; the reconnect backoff takes over.
        absl::Status why = absl::UnavailableError(absl::StrCat("redis AUTH: ", reply->str));
        uint64_t gen = s->generation_;
        s->loop_->Post([s, why, gen, alive = std::weak_ptr<int>(s->alive_)] {
          if (!alive.expired() && gen == s->generation_) s->CloseWithError(why);
        });
      },
      nullptr, static_cast<int>(argv.size()), argv.data(), lens.data());
}

void AsyncConnection::BecomeReady() {
  state_ = State::kReady;
  backoff_ = options_.reconnect_min;
  if (was_ready_) ++reconnects_;
  was_ready_ = true;
  Log(LogLevel::kInfo, "redis.connected", {{"conn", name_}, {"addr", options_.address}});
  OnReady();
}

void AsyncConnection::OnDisconnectCallback(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<AsyncConnection*>(ac->data);
  if (self == nullptr || self->ac_ != ac) return;
  self->ac_ = nullptr;  // hiredis frees it after this callback
  bool was_ready = self->state_ == State::kReady;
  std::string why = status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "lost");
  self->HandleLost(absl::UnavailableError(
                       absl::StrCat("redis connection to ", self->options_.address, " ", why)),
                   was_ready);
}

void AsyncConnection::CloseWithError(const absl::Status& why) {
  if (ac_ == nullptr) return;
  redisAsyncContext* ac = ac_;
  ac_ = nullptr;
  last_error_ = why;
  // Not ready any more before the pending callbacks run, so one that sends a new command is
  // routed elsewhere (or fails) instead of reaching this closing context.
  bool was_ready = state_ == State::kReady;
  if (state_ != State::kStopped) state_ = State::kIdle;
  redisAsyncFree(ac);  // pending callbacks fail with last_error_; disconnect callback ignored
  HandleLost(why, was_ready);
}

void AsyncConnection::HandleLost(const absl::Status& why, bool was_ready) {
  if (state_ == State::kStopped) return;
  state_ = State::kIdle;
  last_error_ = why;
  Log(was_ready ? LogLevel::kWarning : LogLevel::kDebug, "redis.disconnected",
      {{"conn", name_}, {"reason", std::string(why.message())}});
  OnLost(why);
  ScheduleReconnect();
}

void AsyncConnection::ScheduleReconnect() {
  uint64_t gen = ++generation_;
  absl::Duration delay = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  loop_->RunAfter(delay, [this, gen, alive = std::weak_ptr<int>(alive_)] {
    if (!alive.expired() && gen == generation_ && state_ == State::kIdle) Connect();
  });
}

void AsyncConnection::UpdateWatch() {
  if (fd_ >= 0) loop_->Watch(fd_, events_, this);
}

void AsyncConnection::OnReadable() {
  if (ac_ != nullptr) redisAsyncHandleRead(ac_);
}

void AsyncConnection::OnWritable() {
  if (ac_ != nullptr) redisAsyncHandleWrite(ac_);
}

void AsyncConnection::AddRead(void* p) {
  auto* self = static_cast<AsyncConnection*>(p);
  self->events_ |= EPOLLIN;
  self->UpdateWatch();
}

void AsyncConnection::DelRead(void* p) {
  auto* self = static_cast<AsyncConnection*>(p);
  self->events_ &= ~static_cast<uint32_t>(EPOLLIN);
  self->UpdateWatch();
}

void AsyncConnection::AddWrite(void* p) {
  auto* self = static_cast<AsyncConnection*>(p);
  // Connecting (hiredis learns the connect is done from EPOLLOUT), or a flush the socket did
  // not take whole: wait until it is writable.
  if (self->state_ != State::kReady || self->flushing_) {
    self->events_ |= EPOLLOUT;
    self->UpdateWatch();
    return;
  }
  // Commands sent in this loop turn go out together when it ends, in one write.
  if (self->flush_scheduled_) return;
  self->flush_scheduled_ = true;
  self->loop_->AtEndOfTurn([self, alive = std::weak_ptr<int>(self->alive_)] {
    if (!alive.expired()) self->FlushWrites();
  });
}

void AsyncConnection::FlushWrites() {
  flush_scheduled_ = false;
  if (ac_ == nullptr || state_ != State::kReady) return;
  flushing_ = true;
  redisAsyncHandleWrite(ac_);  // may free the context (a write error): ac_ is then null
  flushing_ = false;
}

void AsyncConnection::DelWrite(void* p) {
  auto* self = static_cast<AsyncConnection*>(p);
  self->events_ &= ~static_cast<uint32_t>(EPOLLOUT);
  self->UpdateWatch();
}

void AsyncConnection::Cleanup(void* p) {
  auto* self = static_cast<AsyncConnection*>(p);
  self->events_ = 0;
  self->UpdateWatch();
  self->fd_ = -1;
}

}  // namespace onestory::redis
