#include "libs/embedded/embedded_redis.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"

namespace onestory::embedded {
namespace {

bool Pings(const std::string& socket_path) {
  timeval tv{0, 200000};
  redisContext* c = redisConnectUnixWithTimeout(socket_path.c_str(), tv);
  if (c == nullptr) return false;
  bool ok = false;
  if (!c->err) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
  }
  redisFree(c);
  return ok;
}

}  // namespace

uint64_t DefaultMaxMemory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size) / 2;
}

EmbeddedRedis::EmbeddedRedis(EmbeddedRedisOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<EmbeddedRedis>> EmbeddedRedis::Start(EmbeddedRedisOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", options.data_dir, ": ", ec.message()));
  }
  std::string dir = std::filesystem::absolute(options.data_dir).lexically_normal().string();
  options.data_dir = dir;
  chmod(dir.c_str(), 0700);
  if (options.maxmemory_bytes == 0) options.maxmemory_bytes = DefaultMaxMemory();
  if (options.maxmemory_bytes == 0) {
    return absl::FailedPreconditionError(
        "cannot read the physical memory size for Redis maxmemory; set it explicitly");
  }
  auto redis = std::unique_ptr<EmbeddedRedis>(new EmbeddedRedis(std::move(options)));
  redis->socket_path_ = dir + "/redis.sock";
  if (redis->socket_path_.size() >= 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("data directory path too long for a unix socket (", redis->socket_path_.size(),
                     " bytes; at most 99): ", redis->socket_path_));
  }
  if (absl::Status st = redis->Spawn(); !st.ok()) return st;
  if (redis->options_.supervise) {
    redis->supervisor_ = std::thread([r = redis.get()] { r->Supervise(); });
  }
  return redis;
}

EmbeddedRedis::~EmbeddedRedis() {
  stopping_ = true;
  pid_t pid;
  {
    absl::MutexLock lock(&mu_);
    pid = pid_;
  }
  if (pid > 0) {
    kill(pid, SIGTERM);  // redis-server flushes the append-only file and exits
    // Wait up to 30 s, then SIGKILL: a shutdown never hangs on a stuck redis-server.
    std::thread killer([this, pid] {
      for (int i = 0; i < 3000; ++i) {
        absl::SleepFor(absl::Milliseconds(10));
        absl::MutexLock lock(&mu_);
        if (pid_ != pid) return;
      }
      Log(LogLevel::kError, "embedded_redis.kill", {{"pid", absl::StrCat(pid)}});
      kill(pid, SIGKILL);
    });
    if (supervisor_.joinable()) {
      supervisor_.join();  // reaps the child
    } else {
      waitpid(pid, nullptr, 0);
    }
    {
      absl::MutexLock lock(&mu_);
      pid_ = -1;
    }
    killer.join();
  }
  Log(LogLevel::kInfo, "embedded_redis.stopped", {{"dir", options_.data_dir}});
}

std::string EmbeddedRedis::address() const { return "unix:" + socket_path_; }

std::string EmbeddedRedis::tcp_address() const {
  return options_.port == 0 ? "" : absl::StrCat("127.0.0.1:", options_.port);
}

absl::Status EmbeddedRedis::Spawn() {
  std::vector<std::string> args = {
      options_.redis_server,
      "--port",
      absl::StrCat(options_.port),
      "--bind",
      "127.0.0.1",
      "--unixsocket",
      socket_path_,
      "--unixsocketperm",
      "700",
      "--dir",
      options_.data_dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      options_.appendfsync,
      "--save",
      "",
      "--maxmemory",
      absl::StrCat(options_.maxmemory_bytes),
      "--maxmemory-policy",
      "noeviction",
      "--daemonize",
      "no",
      "--logfile",
      options_.data_dir + "/redis.log",
  };
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  unlink(socket_path_.c_str());
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // The server blocks SIGTERM/SIGINT to sigwait for them; the mask survives exec, and
    // redis-server must receive them.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);  // an ignored signal stays ignored across exec
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  {
    absl::MutexLock lock(&mu_);
    pid_ = pid;
  }
  absl::Time give_up = absl::Now() + options_.start_timeout;
  while (absl::Now() < give_up) {
    if (Pings(socket_path_)) {
      Log(LogLevel::kInfo, "embedded_redis.started",
          {{"pid", absl::StrCat(pid)},
           {"socket", socket_path_},
           {"dir", options_.data_dir},
           {"appendfsync", options_.appendfsync},
           {"maxmemory", absl::StrCat(options_.maxmemory_bytes)}});
      return absl::OkStatus();
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      absl::MutexLock lock(&mu_);
      pid_ = -1;
      return absl::FailedPreconditionError(absl::StrCat(
          options_.redis_server, " exited at start (status ", status, "); see ", options_.data_dir,
          "/redis.log",
          WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is redis-server installed?)" : ""));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  absl::MutexLock lock(&mu_);
  pid_ = -1;
  return absl::DeadlineExceededError(absl::StrCat("redis-server did not answer within ",
                                                  absl::FormatDuration(options_.start_timeout)));
}

void EmbeddedRedis::Supervise() {
  absl::Duration backoff = absl::Milliseconds(500);
  for (;;) {
    pid_t pid;
    {
      absl::MutexLock lock(&mu_);
      pid = pid_;
    }
    if (pid > 0) {
      int status = 0;
      waitpid(pid, &status, 0);
      absl::MutexLock lock(&mu_);
      pid_ = -1;
    }
    if (stopping_) return;
    Log(LogLevel::kError, "embedded_redis.exited",
        {{"pid", absl::StrCat(pid)}, {"restart_in", absl::FormatDuration(backoff)}});
    absl::SleepFor(backoff);
    if (stopping_) return;
    if (absl::Status st = Spawn(); !st.ok()) {
      Log(LogLevel::kError, "embedded_redis.restart_failed",
          {{"error", std::string(st.message())}});
      backoff = std::min(backoff * 2, absl::Seconds(10));
    } else {
      backoff = absl::Milliseconds(500);
    }
  }
}

void EmbeddedRedis::Kill() {
  pid_t pid;
  {
    absl::MutexLock lock(&mu_);
    pid = pid_;
  }
  if (pid <= 0) return;
  kill(pid, SIGKILL);
  if (!options_.supervise) {
    waitpid(pid, nullptr, 0);
    absl::MutexLock lock(&mu_);
    pid_ = -1;
  }
}

absl::Status EmbeddedRedis::Restart() {
  {
    absl::MutexLock lock(&mu_);
    if (pid_ > 0) return absl::FailedPreconditionError("redis-server is still running");
  }
  return Spawn();
}

}  // namespace onestory::embedded
