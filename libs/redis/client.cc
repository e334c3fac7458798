#include "libs/redis/client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace onestory::redis {
namespace {

constexpr absl::Duration kTickInterval = absl::Milliseconds(20);

// Turns error replies into statuses.
ReplyCallback MapErrors(ReplyCallback cb) {
  return [cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
    if (r.ok() && r->type == Reply::Type::kError) {
      cb(ErrorToStatus(r->str));
      return;
    }
    cb(std::move(r));
  };
}

}  // namespace

Client::Client(Options options) : options_(std::move(options)) {
  loop_ = std::make_unique<EventLoop>();
  int n = std::max(1, options_.connections);
  for (int i = 0; i < n; ++i) {
    connections_.push_back(
        std::make_unique<Connection>(loop_.get(), options_, absl::StrCat("cmd-", i)));
  }
  absl::Notification started;
  loop_->Post([this, &started] {
    for (auto& c : connections_) c->Start();
    started.Notify();
    loop_->RunAfter(kTickInterval, [this] { Tick(); });
  });
  started.WaitForNotification();
}

Client::~Client() {
  stopping_ = true;
  absl::Notification stopped;
  loop_->Post([this, &stopped] {
    for (auto& c : connections_) c->Stop();
    stopped.Notify();
  });
  stopped.WaitForNotification();
  loop_.reset();  // joins the loop thread before the connections go
  connections_.clear();
}

void Client::Tick() {
  if (stopping_) return;
  absl::Time now = absl::Now();
  for (auto& c : connections_) c->CheckTimeouts(now);
  UpdateStats();
  loop_->RunAfter(kTickInterval, [this] { Tick(); });
}

void Client::UpdateStats() {
  bool any = false;
  int64_t in_flight = 0;
  uint64_t reconnects = 0;
  for (auto& c : connections_) {
    any = any || c->ready();
    in_flight += static_cast<int64_t>(c->in_flight());
    reconnects += c->reconnects();
  }
  connected_ = any;
  in_flight_ = in_flight;
  reconnects_ = reconnects;
}

void Client::Command(std::vector<std::string> argv, absl::Time deadline, ReplyCallback cb) {
  loop_->Post([this, argv = std::move(argv), deadline, cb = MapErrors(std::move(cb))]() mutable {
    SendOnLoop(argv, deadline, std::move(cb));
  });
}

void Client::SendOnLoop(const std::vector<std::string>& argv, absl::Time deadline, ReplyCallback cb) {
  if (absl::Now() >= deadline) {
    cb(absl::DeadlineExceededError("deadline passed before the redis command was sent"));
    return;
  }
  for (size_t i = 0; i < connections_.size(); ++i) {
    Connection* c = connections_[(next_ + i) % connections_.size()].get();
    if (!c->ready()) continue;
    next_ = (next_ + i + 1) % connections_.size();
    c->Send(argv, deadline, std::move(cb));
    return;
  }
  absl::Status why = connections_.front()->last_error();
  cb(absl::UnavailableError(absl::StrCat("redis unavailable: ", why.message())));
}

void Client::Eval(const Script& script, std::vector<std::string> keys,
                  std::vector<std::string> args, absl::Time deadline, ReplyCallback cb) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(script.sha1());
  argv.push_back(std::to_string(keys.size()));
  for (auto& k : keys) argv.push_back(std::move(k));
  for (auto& a : args) argv.push_back(std::move(a));
  const Script* s = &script;  // scripts are static and outlive every call
  // Shared, so the NOSCRIPT fallback can resend without copying the arguments.
  auto shared = std::make_shared<std::vector<std::string>>(std::move(argv));
  loop_->Post([this, shared, deadline, s, cb = std::move(cb)]() mutable {
    SendOnLoop(*shared, deadline,
               [this, s, deadline, shared, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
                 if (r.ok() && r->type == Reply::Type::kError &&
                     absl::StartsWith(r->str, "NOSCRIPT")) {
                   (*shared)[0] = "EVAL";
                   (*shared)[1] = s->body();
                   SendOnLoop(*shared, deadline, MapErrors(std::move(cb)));
                   return;
                 }
                 MapErrors(std::move(cb))(std::move(r));
               });
  });
}

void Client::Fcall(const Function& function, std::vector<std::string> keys,
                   std::vector<std::string> args, absl::Time deadline, ReplyCallback cb) {
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back(function.read_only ? "FCALL_RO" : "FCALL");
  argv.push_back(function.library->RegisteredName(function.name));
  argv.push_back(std::to_string(keys.size()));
  for (auto& k : keys) argv.push_back(std::move(k));
  for (auto& a : args) argv.push_back(std::move(a));
  // Shared, so the call can be sent again after a load without copying the arguments.
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(argv));
  const FunctionLibrary* library = function.library;  // generated: static, outlives every call
  loop_->Post([this, shared, library, deadline, cb = std::move(cb)]() mutable {
    SendFunctionCall(std::move(shared), library, deadline, /*may_load=*/true, std::move(cb));
  });
}

void Client::SendFunctionCall(std::shared_ptr<const std::vector<std::string>> argv,
                              const FunctionLibrary* library, absl::Time deadline, bool may_load,
                              ReplyCallback cb) {
  const std::vector<std::string>& command = *argv;
  SendOnLoop(command, deadline,
             [this, argv = std::move(argv), library, deadline, may_load,
              cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
               if (!r.ok() || r->type != Reply::Type::kError) return cb(std::move(r));
               if (may_load && IsFunctionNotFound(r->str)) {
                 return LoadThenCall(std::move(argv), library, deadline, std::move(cb));
               }
               // Lua errors name library lines ("user_function:130"): say which file and line.
               cb(ErrorToStatus(library->Locate(r->str)));
             });
}

void Client::LoadThenCall(std::shared_ptr<const std::vector<std::string>> argv,
                          const FunctionLibrary* library, absl::Time deadline, ReplyCallback cb) {
  SendOnLoop({"FUNCTION", "LOAD", std::string(library->code)}, deadline,
             [this, argv = std::move(argv), library, deadline,
              cb = std::move(cb)](absl::StatusOr<Reply> loaded) mutable {
               if (!loaded.ok()) return cb(loaded.status());
               // "Already exists": another caller loaded it meanwhile.
               if (loaded->type == Reply::Type::kError && !IsLibraryLoaded(loaded->str)) {
                 return cb(LoadError(*library, loaded->str));
               }
               SendFunctionCall(std::move(argv), library, deadline, /*may_load=*/false,
                                std::move(cb));
             });
}

absl::StatusOr<Reply> Client::CommandSync(std::vector<std::string> argv, absl::Duration timeout) {
  absl::Notification done;
  absl::StatusOr<Reply> result;
  Command(std::move(argv), absl::Now() + timeout, [&](absl::StatusOr<Reply> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace onestory::redis
