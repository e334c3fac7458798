#include "libs/redis/connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/metrics/metrics.h"

namespace onestory::redis {

namespace {

metrics::Histogram* RoundTrip() {
  static metrics::Histogram* h = metrics::Registry::Global().GetHistogram(
      "onestory_redis_roundtrip_seconds",
      "Redis command round trip, from send to reply (answered commands only)", {});
  return h;
}

}  // namespace

Connection::Connection(EventLoop* loop, Options options, std::string name)
    : AsyncConnection(loop, std::move(options), std::move(name)) {}

void Connection::Send(const std::vector<std::string>& argv, absl::Time caller_deadline,
                      ReplyCallback cb) {
  absl::Time now = absl::Now();
  absl::Time timeout_deadline = now + options().command_timeout;
  bool callers = caller_deadline < timeout_deadline;
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  if (context() == nullptr ||
      redisAsyncCommandArgv(context(), &Connection::OnReply, this, static_cast<int>(args.size()),
                            args.data(), lens.data()) != REDIS_OK) {
    cb(absl::UnavailableError("redis: connection is closing"));
    return;
  }
  pending_.push_back(Pending{std::move(cb), now, callers ? caller_deadline : timeout_deadline,
                             callers});
  ++in_flight_;
}

void Connection::OnReply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<Connection*>(privdata);
  if (self->pending_.empty()) return;
  Pending p = std::move(self->pending_.front());
  self->pending_.pop_front();
  if (p.done) return;
  --self->in_flight_;
  if (reply == nullptr) {
    // hiredis is freeing the context. When it does so on its own (the server closed the
    // connection), its error text is fresher than last_error().
    if (ac != nullptr && ac->err != 0 && ac->errstr[0] != '\0') {
      p.cb(absl::UnavailableError(absl::StrCat("redis connection to ", self->options().address,
                                               " lost: ", ac->errstr)));
      return;
    }
    absl::Status why = self->last_error();
    p.cb(why.ok() ? absl::UnavailableError("redis: connection lost") : why);
    return;
  }
  RoundTrip()->Observe(absl::ToDoubleSeconds(absl::Now() - p.sent));
  p.cb(Reply::FromHiredis(static_cast<redisReply*>(reply)));
}

void Connection::CheckTimeouts(absl::Time now) {
  if (pending_.empty()) return;
  if (now - pending_.front().sent > options().command_timeout) {
    CloseWithError(absl::UnavailableError(
        absl::StrCat("redis at ", options().address, " did not answer within ",
                     absl::FormatDuration(options().command_timeout))));
    return;
  }
  // Callbacks run after the scan: they may send commands, which would grow pending_.
  std::vector<std::pair<ReplyCallback, bool>> overdue;
  for (auto& p : pending_) {
    if (p.done || now < p.deadline) continue;
    p.done = true;
    --in_flight_;
    overdue.emplace_back(std::move(p.cb), p.callers_deadline);
  }
  for (auto& [cb, callers_deadline] : overdue) {
    if (callers_deadline) {
      cb(absl::DeadlineExceededError("deadline passed while waiting for redis"));
    } else {
      cb(absl::UnavailableError(absl::StrCat("redis did not answer within ",
                                             absl::FormatDuration(options().command_timeout))));
    }
  }
}

void Connection::OnLost(const absl::Status& why) {
  // hiredis has already failed every sent command through OnReply; anything left (none is
  // expected) fails here so no callback is ever forgotten.
  while (!pending_.empty()) {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    if (!p.done) p.cb(why);
  }
  in_flight_ = 0;
}

}  // namespace onestory::redis
