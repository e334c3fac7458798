// MetricsHttpServer: serves the Prometheus text of metrics::Registry::Global() at GET /metrics
// on its own port (cpp-httplib from Debian), apart from the gRPC port, with the probes
// Kubernetes and load balancers use: GET /healthz (200 while the process serves HTTP) and
// GET /readyz (200 "ready", or 503 with the reason, from the `ready` check).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/common/http_listener.h"

namespace onestory::service {

class MetricsHttpServer {
 public:
  // Listens on "host:port" (port 0 picks a free one). Returns the server, or UNAVAILABLE.
  // `ready` runs on the HTTP thread for each GET /readyz and may block (briefly).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<absl::Status()> ready);

  int port() const { return http_->port(); }

 private:
  MetricsHttpServer() = default;
  std::unique_ptr<HttpListener> http_;
};

}  // namespace onestory::service
