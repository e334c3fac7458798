// HttpGateway: OneStory's unary RPCs over HTTP/1.1 with JSON, compatible with the Connect
// protocol's unary calls (curl, bot platforms' webhooks, @connectrpc/connect-web):
//
//   POST /onestory.v1.<Service>/<Method>
//   Content-Type: application/json          the request message in proto3 JSON
//   Authorization: Bearer <key>
//   -> 200, the response message in proto3 JSON
//   -> 4xx/5xx, {"code": "invalid_argument", "message": "..."}  (Connect's codes and statuses)
//
// Each request is decoded into its message and sent to this process's gRPC server through its
// in-process channel, with the caller's Authorization, x-request-id and traceparent headers as
// metadata: authentication, validation, rate limits, audit and metrics are exactly the gRPC
// call's. A body that is not JSON of the method's request (bad JSON, an unknown field, a wrong
// type), another content type, a body over the limit or an unknown method is refused before
// anything is called. The request id comes back as the x-request-id header. Browsers on the
// origins of Options::cors_origins may call (CORS); other origins are refused.
//
// The live streams, TimelineService/Watch and AlertService/WatchAlerts, are served to GET as
// Server-Sent Events (http_event_stream.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/http_event_stream.h"
#include "services/common/http_listener.h"

namespace onestory::service {

class HttpGateway {
 public:
  struct Options {
    std::string listen;                // host:port; port 0 picks a free one
    size_t max_body_bytes = 8u << 20;  // the gRPC server's own receive limit
    // Web origins ("https://console.example.com") whose pages may call: their preflights are
    // answered and their responses carry Access-Control-Allow-Origin. A request from any other
    // origin (its Origin header) is refused with 403 before anything is called.
    std::vector<std::string> cors_origins;
    int max_streams = 1000;      // event streams open at once (a thread each); more get 503
    HttpListener::TlsFiles tls;  // HTTPS with these; plain HTTP without
    absl::Duration heartbeat = absl::Seconds(15);  // EventStreams::Options::heartbeat
  };
  // `channel`: the gRPC server's in-process channel.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(const Options& options,
                                                            std::shared_ptr<grpc::Channel> channel);

  // From now on every request is refused with 503, and the open event streams end; returns once
  // no call through the channel is being made. Call it before the gRPC server shuts down: a call
  // into a server that has shut down is not safe.
  void Stop();

  // Stop, then stops listening.
  ~HttpGateway();

  int port() const { return http_->port(); }

 private:
  HttpGateway() = default;
  // Declared first so it is destroyed last: its threads' calls use channel_.
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<EventStreams> streams_;
  std::unique_ptr<HttpListener> http_;
  // Held shared by each request while it calls through channel_ (CallGuard), exclusively by Stop.
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

 public:
  // A request's right to call through the channel: open() false once Stop has begun.
  class CallGuard {
   public:
    explicit CallGuard(HttpGateway* g) : lock_(&g->mu_), open_(!g->stopping_) {}
    bool open() const { return open_; }

   private:
    absl::ReaderMutexLock lock_;
    bool open_;
  };
};

}  // namespace onestory::service
