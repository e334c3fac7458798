#include "services/common/metrics_http.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/metrics/metrics.h"

namespace onestory::service {

MetricsHttpServer::MetricsHttpServer() : http_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<absl::Status()> ready) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_listen '", listen, "': expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  auto s = std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer());
  s->http_->Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics::Registry::Global().Render(), "text/plain; version=0.0.4");
  });
  s->http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s->http_->Get(
      "/readyz", [ready = std::move(ready)](const httplib::Request&, httplib::Response& res) {
        absl::Status st = ready();
        res.status = st.ok() ? 200 : 503;
        res.set_content(st.ok() ? "ready\n" : absl::StrCat("not ready: ", st.message(), "\n"),
                        "text/plain");
      });
  s->port_ = port == 0 ? s->http_->bind_to_any_port(host) : port;
  if (port != 0 && !s->http_->bind_to_port(host, port)) s->port_ = -1;
  if (s->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, " for /metrics"));
  }
  s->thread_ = std::thread([srv = s->http_.get()] { srv->listen_after_bind(); });
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace onestory::service
