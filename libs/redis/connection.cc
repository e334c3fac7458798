#include "libs/redis/connection.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/metrics/metrics.h"
#include "libs/redis/command_keys.h"

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
    : conn_(loop, std::move(options), std::move(name),
            {.on_ready = [] {},
             .on_reply = [this](Reply reply) { OnReply(std::move(reply)); },
             .on_lost = [this](const absl::Status& why) { OnLost(why); },
             .in_place_next = [this] { return !pending_.empty() && pending_.front().in_place; }}) {}

void Connection::Stop() {
  bool was_ready = conn_.ready();
  conn_.Stop();
  if (was_ready) OnLost(absl::UnavailableError("redis: client stopped"));
}

void Connection::Send(const std::vector<std::string>& argv, absl::Time caller_deadline,
                      ReplyCallback cb, bool in_place) {
  absl::Time now = absl::Now();
  absl::Time timeout_deadline = now + options().command_timeout;
  bool callers = caller_deadline < timeout_deadline;
  Pending p;
  p.cb = std::move(cb);
  p.sent = now;
  p.deadline = callers ? caller_deadline : timeout_deadline;
  p.callers_deadline = callers;
  p.in_place = in_place;
  if (waits_for_replicas()) {
    if (IsWriteCommand(argv)) p.kind = Kind::kWrite;
    // Behind a blocking WAIT: held, in order (an ASKING stays right before its command).
    if (wait_in_flight_ || !held_.empty()) {
      held_.push_back(Held{argv, std::move(p)});
      ++in_flight_;
      return;
    }
  }
  Enqueue(argv, std::move(p));
}

void Connection::SendTransaction(const std::vector<std::vector<std::string>>& commands,
                                 absl::Time caller_deadline, ReplyCallback cb, bool in_place) {
  auto refusal = std::make_shared<std::string>();
  if (!Write({"MULTI"})) return cb(absl::UnavailableError("redis: connection is closing"));
  // One entry for MULTI's OK and every QUEUED: they carry nothing but a refusal.
  Pending p;
  p.sent = absl::Now();
  p.deadline = absl::InfiniteFuture();
  p.kind = Kind::kQueued;
  p.queued = 1;
  p.refusal = refusal;
  // A command that cannot be written leaves the connection closing: the EXEC then fails too.
  for (const auto& argv : commands) p.queued += Write(argv) ? 1 : 0;
  pending_.push_back(std::move(p));
  Send(
      {"EXEC"}, caller_deadline,
      [refusal, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
        if (r.ok() && !refusal->empty()) {
          r->type = Reply::Type::kError;
          r->str = std::move(*refusal);
          r->elements.clear();
          r->view.reset();
        }
        cb(std::move(r));
      },
      in_place);
}

void Connection::Enqueue(const std::vector<std::string>& argv, Pending p) {
  if (!Write(argv)) {
    p.cb(absl::UnavailableError("redis: connection is closing"));
    return;
  }
  if (p.kind == Kind::kWrite) {
    ++unwaited_writes_;
    if (p.callers_deadline) wait_by_ = std::min(wait_by_, p.deadline);
    if (!wait_posted_) {
      // After this loop turn, so that the writes sent in it share the WAIT. The connection
      // outlives the loop's tasks (its owner joins the loop before destroying it).
      wait_posted_ = true;
      loop()->Post([this] { SendWait(); });
    }
  }
  pending_.push_back(std::move(p));
  ++in_flight_;
}

void Connection::SendWait() {
  wait_posted_ = false;
  if (unwaited_writes_ == 0 || wait_in_flight_) return;
  absl::Time now = absl::Now();
  // Never 0 ms: WAIT 0 blocks without limit.
  absl::Duration timeout =
      std::max(absl::Milliseconds(1),
               std::min({options().wait_timeout, wait_by_ - now, options().command_timeout / 2}));
  int64_t ms = absl::ToInt64Milliseconds(timeout);
  unwaited_writes_ = 0;
  wait_by_ = absl::InfiniteFuture();
  if (!Write({"WAIT", std::to_string(options().wait_replicas), std::to_string(ms)})) {
    // Closing: the writes not answered yet fail through OnReply; the answered ones here.
    FailWaiting(absl::UnavailableError("redis: connection is closing"));
    return;
  }
  wait_in_flight_ = true;
  wait_timeout_ = absl::Milliseconds(ms);
  Pending p;
  p.sent = now;
  p.deadline = absl::InfiniteFuture();
  p.kind = Kind::kWait;
  pending_.push_back(std::move(p));
}

void Connection::OnReply(Reply reply) {
  if (pending_.empty()) return;
  if (Pending& queued = pending_.front(); queued.kind == Kind::kQueued) {
    if (reply.type == Reply::Type::kError && queued.refusal->empty()) {
      *queued.refusal = std::move(reply.str);
    }
    if (--queued.queued == 0) pending_.pop_front();
    return;  // a lost connection fails the EXEC behind it
  }
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  RoundTrip()->Observe(absl::ToDoubleSeconds(absl::Now() - p.sent));
  absl::StatusOr<Reply> r = std::move(reply);
  if (p.kind == Kind::kWait) return OnWaitReply(std::move(r), wait_timeout_);
  if (p.done) return;
  // A write that Redis ran waits for the WAIT behind it; one it refused (an error reply:
  // MOVED, a Lua error) is answered now.
  if (p.kind == Kind::kWrite && r->type != Reply::Type::kError) {
    p.reply = *std::move(r);
    answered_.push_back(std::move(p));
    return;
  }
  --in_flight_;
  p.cb(std::move(r));
}

void Connection::OnWaitReply(absl::StatusOr<Reply> r, absl::Duration timeout) {
  wait_in_flight_ = false;
  // Every write answered since the last WAIT was sent before this one: it covers them all.
  std::deque<Pending> covered;
  covered.swap(answered_);
  // What was held goes out before the callbacks run, so that it keeps its place ahead of
  // whatever they send; its writes get a WAIT of their own after this turn.
  std::deque<Held> held;
  held.swap(held_);
  for (Held& h : held) {
    if (h.pending.done) continue;
    --in_flight_;
    // Lost: they were never sent, and this connection is gone.
    if (!r.ok()) {
      h.pending.cb(r.status());
      continue;
    }
    Enqueue(h.argv, std::move(h.pending));
  }
  int64_t confirmed = -1;
  std::string why;
  if (!r.ok()) {
    why = std::string(r.status().message());
  } else if (r->type == Reply::Type::kInteger) {
    confirmed = r->integer;
  } else {
    why = absl::StrCat("WAIT answered ", r->type == Reply::Type::kError ? r->str : "no count");
  }
  const int wanted = options().wait_replicas;
  bool ok = confirmed >= wanted;
  absl::Status shortfall;
  if (!ok) {
    shortfall = absl::UnavailableError(
        confirmed >= 0
            ? absl::StrCat("the write is stored on the primary (", options().address, ") but only ",
                           confirmed, " of ", wanted, " replicas confirmed it in ",
                           absl::ToInt64Milliseconds(timeout),
                           " ms; retry with the same ids: nothing is stored twice")
            : absl::StrCat("the write may be stored on the primary (", options().address,
                           ") but its replicas could not be asked (", why,
                           "); retry with the same ids: nothing is stored twice"));
    size_t waiting = 0;
    for (const Pending& p : covered) waiting += p.done ? 0 : 1;
    Log(LogLevel::kWarning, "redis.wait_shortfall",
        {{"conn", name()},
         {"addr", options().address},
         {"replicas", confirmed >= 0 ? std::to_string(confirmed) : why},
         {"wanted", std::to_string(wanted)},
         {"timeout_ms", std::to_string(absl::ToInt64Milliseconds(timeout))},
         {"writes", std::to_string(waiting)}});
  }
  for (Pending& p : covered) {
    if (p.done) continue;
    --in_flight_;
    if (ok) {
      p.cb(std::move(p.reply));
    } else {
      p.cb(shortfall);
    }
  }
}

void Connection::FailWaiting(const absl::Status& why) {
  std::deque<Pending> failed;
  failed.swap(answered_);
  for (Held& h : held_) failed.push_back(std::move(h.pending));
  held_.clear();
  for (Pending& p : failed) {
    if (p.done) continue;
    --in_flight_;
    p.cb(why);
  }
}

void Connection::CheckTimeouts(absl::Time now) {
  if (pending_.empty()) return;
  if (now - pending_.front().sent > options().command_timeout) {
    conn_.Close(absl::UnavailableError(
        absl::StrCat("redis at ", options().address, " did not answer within ",
                     absl::FormatDuration(options().command_timeout))));
    return;
  }
  // Callbacks run after the scan: they may send commands, which would grow pending_.
  struct Overdue {
    ReplyCallback cb;
    bool callers_deadline;
    bool stored;  // the write ran; its replicas had not confirmed it
  };
  std::vector<Overdue> overdue;
  auto scan = [&](Pending& p, bool stored) {
    if (p.done || p.kind == Kind::kWait || p.kind == Kind::kQueued || now < p.deadline) return;
    p.done = true;
    --in_flight_;
    overdue.push_back(Overdue{std::move(p.cb), p.callers_deadline, stored});
  };
  for (auto& p : pending_) scan(p, false);
  for (auto& p : answered_) scan(p, true);
  for (auto& h : held_) scan(h.pending, false);
  for (auto& [cb, callers_deadline, stored] : overdue) {
    if (stored) {
      absl::string_view text =
          "the write is stored on the primary but its replicas had not confirmed it when the "
          "deadline passed; retry with the same ids: nothing is stored twice";
      cb(callers_deadline ? absl::DeadlineExceededError(text) : absl::UnavailableError(text));
    } else if (callers_deadline) {
      cb(absl::DeadlineExceededError("deadline passed while waiting for redis"));
    } else {
      cb(absl::UnavailableError(absl::StrCat("redis did not answer within ",
                                             absl::FormatDuration(options().command_timeout))));
    }
  }
}

void Connection::OnLost(const absl::Status& why) {
  // Every command sent and not answered, in order. The connection is not ready any more, so a
  // callback that sends again is routed elsewhere (or fails) instead of reaching this one.
  std::deque<Pending> lost;
  lost.swap(pending_);
  for (Pending& p : lost) {
    if (p.kind == Kind::kWait) {
      OnWaitReply(why, wait_timeout_);  // the writes it covered may be stored: they say so
    } else if (p.kind != Kind::kQueued && !p.done && p.cb) {
      p.cb(why);
    }
  }
  // Writes that ran but whose WAIT is lost, and commands held behind it (never sent).
  FailWaiting(why);
  wait_in_flight_ = false;
  unwaited_writes_ = 0;
  wait_by_ = absl::InfiniteFuture();
  in_flight_ = 0;
}

}  // namespace onestory::redis
