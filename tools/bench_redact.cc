// bench_redact: one RedactEvent on a large timeline, against a redis-server of its own, and
// what it costs Redis: the longest single command of the redaction (SLOWLOG), their number and
// total, the call's total time, and the longest Append another tenant saw meanwhile.
//
//   bench_redact --events=100000 --body_bytes=65536
//
// The timeline is built through TimelineStore::Append (the stored format of a real server),
// 60 events a call. The redis-server runs without persistence on a free loopback port in a
// temporary directory. Before building, it checks MemAvailable: the timeline is held twice
// while the redaction copies it, so when events * (body_bytes + 512) * 2.3 does not fit in 85%
// of it, the body size is lowered until it fits (and the run says so).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/privacy_store.h"
#include "libs/redis/client.h"
#include "libs/timeline/timeline_store.h"

ABSL_FLAG(int, events, 100000, "events in the timeline");
ABSL_FLAG(int, body_bytes, 64 * 1024, "body bytes of each event (lowered to fit in memory)");
ABSL_FLAG(std::string, redis_server, "redis-server", "the redis-server binary");

namespace onestory {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

int64_t MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

// Runs a command and waits for its reply (the bench's own thread, never the loop thread).
absl::StatusOr<redis::Reply> Run(redis::Client* client, std::vector<std::string> argv) {
  absl::Notification done;
  absl::StatusOr<redis::Reply> out;
  client->Command(std::move(argv), absl::Now() + absl::Seconds(60),
                  [&](absl::StatusOr<redis::Reply> r) {
                    out = std::move(r);
                    done.Notify();
                  });
  done.WaitForNotification();
  return out;
}

template <typename T, typename F>
absl::StatusOr<T> Wait(F start) {
  absl::Notification done;
  absl::StatusOr<T> out;
  start([&](absl::StatusOr<T> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

v1::Event MakeEvent(const std::string& id, const std::string& body) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_WEB_CHAT);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  e.set_summary(absl::StrCat("message ", id));
  e.set_body(body);
  return e;
}

int Main() {
  const int events = absl::GetFlag(FLAGS_events);
  int body_bytes = absl::GetFlag(FLAGS_body_bytes);
  const int64_t available = MemAvailableBytes();
  auto needed = [&](int body) { return static_cast<int64_t>(events) * (body + 512) * 23 / 10; };
  std::printf(
      "memory available: %.1f GiB; timeline of %d events of %d bytes needs about %.1f GiB "
      "during the redaction\n",
      available / 1073741824.0, events, body_bytes, needed(body_bytes) / 1073741824.0);
  while (body_bytes > 1024 && needed(body_bytes) > available * 85 / 100) body_bytes /= 2;
  if (body_bytes != absl::GetFlag(FLAGS_body_bytes)) {
    std::printf("not enough memory for %d-byte bodies: measuring %d-byte bodies instead\n",
                absl::GetFlag(FLAGS_body_bytes), body_bytes);
  }

  char dir_template[] = "/tmp/bench-redact-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  int port = FreePort();
  pid_t redis_pid = fork();
  if (redis_pid == 0) {
    std::string p = absl::StrCat(port);
    execlp(absl::GetFlag(FLAGS_redis_server).c_str(), "redis-server", "--port", p.c_str(), "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.c_str(), "--logfile",
           (dir + "/redis.log").c_str(), nullptr);
    _exit(127);
  }
  redis::Options opts;
  opts.address = absl::StrCat("127.0.0.1:", port);
  opts.command_timeout = absl::Seconds(60);
  auto client = std::make_unique<redis::Client>(opts);
  for (int i = 0; i < 100 && !Run(client.get(), {"PING"}).ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  identity::IdentityStore identity(client.get());
  timeline::TimelineStore timeline(client.get(), &identity);
  privacy::PrivacyStore privacy(client.get(), &identity);

  // The timeline, 60 events a call, 4 calls in flight.
  const std::string body(body_bytes, 'x');
  const std::string secret_id = absl::StrCat("ev-", events / 2);
  std::string customer;
  absl::Time fill_start = absl::Now();
  {
    v1::AppendRequest first;
    first.set_tenant("bench");
    first.mutable_customer()->mutable_identifier()->set_type(v1::IDENTIFIER_TYPE_PHONE);
    first.mutable_customer()->mutable_identifier()->set_value("+14155550100");
    first.set_create_if_missing(true);
    *first.add_events() = MakeEvent("ev-0", body);
    auto r = Wait<v1::AppendResponse>([&](auto done) {
      timeline.Append(first, absl::Now() + absl::Seconds(60), std::move(done));
    });
    if (!r.ok()) {
      std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
      return 1;
    }
    customer = r->customer_id();
  }
  std::atomic<int> next{1};
  std::atomic<bool> failed{false};
  std::vector<std::thread> fillers;
  for (int t = 0; t < 4; ++t) {
    fillers.emplace_back([&] {
      while (!failed) {
        int from = next.fetch_add(60);
        if (from >= events) return;
        v1::AppendRequest req;
        req.set_tenant("bench");
        req.mutable_customer()->set_customer_id(customer);
        for (int i = from; i < std::min(events, from + 60); ++i) {
          *req.add_events() = MakeEvent(absl::StrCat("ev-", i), body);
        }
        auto r = Wait<v1::AppendResponse>([&](auto done) {
          timeline.Append(req, absl::Now() + absl::Seconds(60), std::move(done));
        });
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          failed = true;
        }
      }
    });
  }
  for (auto& t : fillers) t.join();
  if (failed) return 1;
  keys::CustomerKeys ck("bench", customer);
  std::printf("built %d events of %d-byte bodies in %.1f s (%lld in the stream)\n", events,
              body_bytes, absl::ToDoubleSeconds(absl::Now() - fill_start),
              static_cast<long long>(Run(client.get(), {"XLEN", ck.timeline()})->integer));

  Run(client.get(), {"CONFIG", "SET", "slowlog-max-len", "1000000"}).status().IgnoreError();
  Run(client.get(), {"CONFIG", "SET", "slowlog-log-slower-than", "0"}).status().IgnoreError();
  Run(client.get(), {"SLOWLOG", "RESET"}).status().IgnoreError();

  // Another tenant appends one event every millisecond meanwhile.
  std::atomic<bool> stop{false};
  std::atomic<int> other_ok{0}, other_failed{0};
  absl::Duration other_longest;
  std::thread other([&] {
    for (int i = 0; !stop; ++i) {
      v1::AppendRequest req;
      req.set_tenant("bench-other");
      req.mutable_customer()->mutable_identifier()->set_type(v1::IDENTIFIER_TYPE_PHONE);
      req.mutable_customer()->mutable_identifier()->set_value("+14155550199");
      req.set_create_if_missing(true);
      *req.add_events() = MakeEvent(absl::StrCat("o-", i), "hello");
      absl::Time t0 = absl::Now();
      auto r = Wait<v1::AppendResponse>([&](auto done) {
        timeline.Append(req, absl::Now() + absl::Seconds(10), std::move(done));
      });
      other_longest = std::max(other_longest, absl::Now() - t0);
      (r.ok() ? other_ok : other_failed)++;
      absl::SleepFor(absl::Milliseconds(1));
    }
  });

  v1::RedactEventRequest req;
  req.set_tenant("bench");
  req.mutable_customer()->set_customer_id(customer);
  req.set_event_id(secret_id);
  req.set_summary("[removed]");
  req.set_reason("bench");
  absl::Time t0 = absl::Now();
  auto redacted = Wait<v1::RedactEventResponse>(
      [&](auto done) { privacy.Redact(req, absl::Now() + absl::Minutes(30), std::move(done)); });
  absl::Duration total = absl::Now() - t0;
  stop = true;
  other.join();
  auto slowlog = Run(client.get(), {"SLOWLOG", "GET", "-1"});
  if (!redacted.ok()) {
    std::fprintf(stderr, "redact: %s\n", redacted.status().ToString().c_str());
  }
  int64_t commands = 0, longest = 0, sum = 0, others_longest = 0;
  // The slowest commands the redaction's function calls ran (Redis 7.0 lists them too), to see
  // where a long call spent its time.
  std::vector<std::pair<int64_t, std::string>> inner;
  std::vector<int64_t> times;
  if (slowlog.ok()) {
    for (const auto& entry : slowlog->elements) {
      int64_t us = entry.elements[2].integer;
      bool mine = false;
      // Redis 7.0 lists the commands a function runs too: the call's time includes theirs.
      const auto& args = entry.elements[3].elements;
      for (const auto& arg : args) mine |= arg.str == ck.timeline_rebuild();
      bool script = !args.empty() && absl::StartsWith(args[0].str, "FCALL");
      if (mine && !script && !args.empty()) inner.emplace_back(us, args[0].str);
      if (mine && script) {
        times.push_back(us);
        ++commands;
        longest = std::max(longest, us);
        sum += us;
      } else if (!mine) {
        others_longest = std::max(others_longest, us);
      }
    }
  }
  std::printf(
      "RedactEvent on %d events of %d-byte bodies: %s in %.2f s; %lld copy/swap commands, "
      "longest %.2f ms, together %.2f s of Redis time; longest other command %.2f ms; other "
      "tenant: %d appends OK, %d failed, longest %.2f ms\n",
      events, body_bytes, redacted.ok() ? "OK" : "FAILED", absl::ToDoubleSeconds(total),
      static_cast<long long>(commands), longest / 1000.0, sum / 1e6, others_longest / 1000.0,
      other_ok.load(), other_failed.load(), absl::ToDoubleMilliseconds(other_longest));

  std::sort(times.begin(), times.end());
  auto pct = [&](double p) {
    return times.empty()
               ? 0.0
               : times[std::min(times.size() - 1, static_cast<size_t>(p * times.size()))] / 1000.0;
  };
  std::printf(
      "  the redaction's calls: median %.2f ms, p99 %.2f ms, p99.9 %.2f ms, longest %.2f ms\n",
      pct(0.5), pct(0.99), pct(0.999), longest / 1000.0);
  std::sort(inner.rbegin(), inner.rend());
  for (size_t i = 0; i < std::min<size_t>(5, inner.size()); ++i) {
    std::printf("  slowest command inside: %s %.2f ms\n", inner[i].second.c_str(),
                inner[i].first / 1000.0);
  }
  client.reset();
  kill(redis_pid, SIGTERM);
  waitpid(redis_pid, nullptr, 0);
  std::string rm = absl::StrCat("rm -rf '", dir, "'");
  int ignored = std::system(rm.c_str());
  (void)ignored;
  return redacted.ok() ? 0 : 1;
}

}  // namespace
}  // namespace onestory

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return onestory::Main();
}
