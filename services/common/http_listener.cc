#include "services/common/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace onestory::service {
namespace {

// cpp-httplib's task queue: runs each connection's work on a thread started for it (and kept
// for the next connection waiting, if any), at most `max_threads` at once. Unlike cpp-httplib's
// own pool, idle threads are not kept, so a large limit costs nothing until used.
class ThreadPerConnection final : public httplib::TaskQueue {
 public:
  explicit ThreadPerConnection(int max_threads) : state_(std::make_shared<State>(max_threads)) {}
  ~ThreadPerConnection() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    absl::MutexLock lock(&state_->mu);
    state_->waiting.push_back(std::move(fn));
    if (state_->running < state_->max_threads) {
      ++state_->running;
      std::thread([state = state_] { Run(*state); }).detach();
    }
  }

  // Waits for every connection's work to end (the server closed its socket: no new ones come).
  void shutdown() override {
    absl::MutexLock lock(&state_->mu);
    state_->mu.Await(absl::Condition(
        +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->running == 0; },
        state_.get()));
  }

 private:
  // Shared with the threads, which may still be unlocking it when shutdown() returns.
  struct State {
    explicit State(int max) : max_threads(max) {}
    const int max_threads;
    absl::Mutex mu;
    std::deque<std::function<void()>> waiting ABSL_GUARDED_BY(mu);
    int running ABSL_GUARDED_BY(mu) = 0;
  };

  static void Run(State& s) {
    absl::MutexLock lock(&s.mu);
    while (!s.waiting.empty()) {
      std::function<void()> fn = std::move(s.waiting.front());
      s.waiting.pop_front();
      s.mu.Unlock();
      fn();
      s.mu.Lock();
    }
    --s.running;
  }

  std::shared_ptr<State> state_;
};

}  // namespace

HttpListener::HttpListener(std::unique_ptr<httplib::Server> http, int max_threads)
    : http_(std::move(http)) {
  // A response goes out in several writes (headers, body, each event): without this, Nagle's
  // algorithm holds the later ones for the client's delayed ACK, ~40 ms a call.
  http_->set_tcp_nodelay(true);
  // cpp-httplib closes a kept-alive connection after 5 requests by default: a busy client would
  // reconnect every 5 calls, and bursts of reconnects overflow its listen backlog of 5.
  http_->set_keep_alive_max_count(10000);
  http_->new_task_queue = [max_threads] { return new ThreadPerConnection(max_threads); };
}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Bind(const std::string& listen,
                                                                 absl::string_view flag,
                                                                 int max_threads,
                                                                 const TlsFiles& tls) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", listen, "': expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  std::unique_ptr<httplib::Server> http;
  if (tls.enabled()) {
    auto https = std::make_unique<httplib::SSLServer>(
        tls.cert.c_str(), tls.key.c_str(), tls.client_ca.empty() ? nullptr : tls.client_ca.c_str());
    if (!https->is_valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": cannot serve TLS with certificate ", tls.cert, " and key ", tls.key,
                       tls.client_ca.empty() ? "" : absl::StrCat(" and client CA ", tls.client_ca),
                       " (unreadable, not PEM, or not a pair)"));
    }
    http = std::move(https);
  } else {
    http = std::make_unique<httplib::Server>();
  }
  auto l = std::unique_ptr<HttpListener>(new HttpListener(std::move(http), max_threads));
  // The listening socket, seen as cpp-httplib creates it. SO_REUSEADDR (not cpp-httplib's
  // SO_REUSEPORT, which would let another process bind the port too): a restarted server binds
  // again while its old connections linger in TIME_WAIT.
  auto listening = std::make_shared<int>(-1);
  l->http_->set_socket_options([listening](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listening = sock;
  });
  l->port_ = port == 0 ? l->http_->bind_to_any_port(host) : port;
  if (port != 0 && !l->http_->bind_to_port(host, port)) l->port_ = -1;
  if (l->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(flag, ": cannot listen on ", listen));
  }
  // Debian's cpp-httplib listens with a backlog of 5: a burst of connections (a thousand
  // browsers reconnecting after a restart) would wait on SYN retransmits of 1, 3, 7... s.
  // Listening again on the bound socket raises it.
  if (*listening >= 0) ::listen(*listening, SOMAXCONN);
  return l;
}

void HttpListener::Serve() {
  thread_ = std::thread([srv = http_.get()] { srv->listen_after_bind(); });
}

HttpListener::~HttpListener() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace onestory::service
