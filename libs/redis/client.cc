#include "libs/redis/client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/redis/command_keys.h"

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
  if (cluster()) {
    router_ = std::make_unique<ClusterRouter>(loop_.get(), options_);
  } else {
    int n = std::max(1, options_.connections);
    // With wait_replicas, reads get connections that never carry a WAIT (no read queues
    // behind one) and writes as many of their own.
    Options reads = options_;
    reads.wait_replicas = 0;
    for (int i = 0; i < n; ++i) {
      connections_.push_back(
          std::make_unique<Connection>(loop_.get(), reads, absl::StrCat("cmd-", i)));
    }
    for (int i = 0; i < n && options_.wait_replicas > 0; ++i) {
      connections_.push_back(
          std::make_unique<Connection>(loop_.get(), options_, absl::StrCat("cmd-w", i)));
    }
  }
  absl::Notification started;
  loop_->Post([this, &started] {
    for (auto& c : connections_) c->Start();
    if (router_) router_->Start();
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
    if (router_) router_->Stop();
    stopped.Notify();
  });
  stopped.WaitForNotification();
  loop_.reset();  // joins the loop thread before the connections go
  connections_.clear();
  router_.reset();
}

void Client::Tick() {
  if (stopping_) return;
  absl::Time now = absl::Now();
  for (auto& c : connections_) c->CheckTimeouts(now);
  if (router_) router_->Tick(now);
  UpdateStats();
  loop_->RunAfter(kTickInterval, [this] { Tick(); });
}

void Client::UpdateStats() {
  if (router_) {
    connected_ = router_->connected();
    in_flight_ = router_->in_flight();
    reconnects_ = router_->reconnects();
    return;
  }
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

absl::StatusOr<int> Client::SlotOf(absl::Span<const std::string> keys) const {
  if (!cluster()) return kAnySlot;
  return KeysSlot(keys);
}

void Client::FailOnLoop(absl::Status status, ReplyCallback cb) {
  loop_->Post([status = std::move(status), cb = std::move(cb)]() mutable { cb(status); });
}

void Client::Command(std::vector<std::string> argv, absl::Time deadline, ReplyCallback cb) {
  int slot = kAnySlot;
  if (cluster()) {
    absl::StatusOr<int> s = CommandSlot(argv);
    if (!s.ok()) return FailOnLoop(s.status(), std::move(cb));
    slot = *s;
  }
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(argv));
  loop_->Post(
      [this, slot, shared = std::move(shared), deadline, cb = MapErrors(std::move(cb))]() mutable {
        SendOnLoop(slot, std::move(shared), deadline, std::move(cb));
      });
}

void Client::Snapshot(std::vector<std::vector<std::string>> commands, absl::Time deadline,
                      ReplyCallback cb, bool in_place) {
  std::vector<std::string> keys;
  for (const auto& argv : commands) {
    if (IsWriteCommand(argv)) {
      return FailOnLoop(absl::InvalidArgumentError(absl::StrCat(
                            "redis snapshot: ", argv.empty() ? "" : argv[0], " is not a read")),
                        std::move(cb));
    }
    if (!cluster()) continue;
    absl::StatusOr<std::vector<std::string>> k = CommandKeys(argv);
    if (!k.ok()) return FailOnLoop(k.status(), std::move(cb));
    keys.insert(keys.end(), k->begin(), k->end());
  }
  absl::StatusOr<int> slot = SlotOf(keys);
  if (!slot.ok()) return FailOnLoop(slot.status(), std::move(cb));
  auto shared = std::make_shared<const std::vector<std::vector<std::string>>>(std::move(commands));
  loop_->Post([this, slot = *slot, shared = std::move(shared), deadline, in_place,
               cb = MapErrors(std::move(cb))]() mutable {
    if (absl::Now() >= deadline) {
      return cb(absl::DeadlineExceededError("deadline passed before the redis command was sent"));
    }
    if (router_) {
      return router_->SendTransaction(slot, std::move(shared), deadline, std::move(cb), in_place);
    }
    Connection* c = NextConnection(/*write=*/false);
    if (c == nullptr) return cb(Unavailable());
    c->SendTransaction(*shared, deadline, std::move(cb), in_place);
  });
}

void Client::SendOnLoop(int slot, Argv argv, absl::Time deadline, ReplyCallback cb) {
  if (absl::Now() >= deadline) {
    cb(absl::DeadlineExceededError("deadline passed before the redis command was sent"));
    return;
  }
  if (router_) {
    router_->Send(slot, std::move(argv), deadline, std::move(cb));
    return;
  }
  Connection* c = NextConnection(IsWriteCommand(*argv));
  if (c == nullptr) return cb(Unavailable());
  c->Send(*argv, deadline, std::move(cb));
}

Connection* Client::NextConnection(bool write) {
  const bool confirm = options_.wait_replicas > 0 && write;
  for (size_t i = 0; i < connections_.size(); ++i) {
    Connection* c = connections_[(next_ + i) % connections_.size()].get();
    if (!c->ready() || c->waits_for_replicas() != confirm) continue;
    next_ = (next_ + i + 1) % connections_.size();
    return c;
  }
  return nullptr;
}

absl::Status Client::Unavailable() const {
  return absl::UnavailableError(
      absl::StrCat("redis unavailable: ", connections_.front()->last_error().message()));
}

void Client::Fcall(const Function& function, std::vector<std::string> keys,
                   std::vector<std::string> args, absl::Time deadline, ReplyCallback cb) {
  absl::StatusOr<int> slot = SlotOf(keys);
  if (!slot.ok()) return FailOnLoop(slot.status(), std::move(cb));
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
  loop_->Post([this, slot = *slot, shared, library, deadline, cb = std::move(cb)]() mutable {
    if (router_) router_->AddLibrary(library);
    SendFunctionCall(slot, std::move(shared), library, deadline, /*may_load=*/true, std::move(cb));
  });
}

void Client::SendFunctionCall(int slot, Argv argv, const FunctionLibrary* library,
                              absl::Time deadline, bool may_load, ReplyCallback cb) {
  Argv command = argv;
  SendOnLoop(slot, std::move(command), deadline,
             [this, slot, argv = std::move(argv), library, deadline, may_load,
              cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
               if (!r.ok() || r->type != Reply::Type::kError) return cb(std::move(r));
               if (may_load && IsFunctionNotFound(r->str)) {
                 return LoadThenCall(slot, std::move(argv), library, deadline, std::move(cb));
               }
               // Lua errors name library lines ("user_function:130"): say which file and line.
               cb(ErrorToStatus(library->Locate(r->str)));
             });
}

void Client::LoadThenCall(int slot, Argv argv, const FunctionLibrary* library, absl::Time deadline,
                          ReplyCallback cb) {
  // On a cluster the load goes where the call went: the primary of the call's slot.
  auto load = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"FUNCTION", "LOAD", std::string(library->code)});
  SendOnLoop(slot, std::move(load), deadline,
             [this, slot, argv = std::move(argv), library, deadline,
              cb = std::move(cb)](absl::StatusOr<Reply> loaded) mutable {
               if (!loaded.ok()) return cb(loaded.status());
               // "Already exists": another caller loaded it meanwhile.
               if (loaded->type == Reply::Type::kError && !IsLibraryLoaded(loaded->str)) {
                 return cb(LoadError(*library, loaded->str));
               }
               SendFunctionCall(slot, std::move(argv), library, deadline, /*may_load=*/false,
                                std::move(cb));
             });
}

std::vector<absl::StatusOr<Reply>> Client::CommandOnEveryPrimarySync(std::vector<std::string> argv,
                                                                     absl::Duration timeout) {
  if (!router_) return {CommandSync(std::move(argv), timeout)};
  absl::Notification done;
  std::vector<absl::StatusOr<Reply>> results;
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(argv));
  absl::Time deadline = absl::Now() + timeout;
  loop_->Post([&, shared, deadline] {
    router_->SendToPrimaries(
        shared, deadline, [&](std::vector<std::pair<std::string, absl::StatusOr<Reply>>> replies) {
          for (auto& [address, r] : replies) {
            if (r.ok() && r->type == Reply::Type::kError) {
              results.push_back(ErrorToStatus(r->str));
            } else {
              results.push_back(std::move(r));
            }
          }
          done.Notify();
        });
  });
  done.WaitForNotification();
  return results;
}

void Client::RememberLibrary(const FunctionLibrary* library) {
  if (!router_) return;
  loop_->Post([this, library] { router_->AddLibrary(library); });
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
