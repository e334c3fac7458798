// MetricsHttpServer: serves the Prometheus text of metrics::Registry::Global() at GET /metrics
// on its own port (cpp-httplib from Debian), apart from the gRPC port, with the probes
// Kubernetes and load balancers use: GET /healthz (200 while the process serves HTTP) and
// GET /readyz (200 "ready", or 503 with the reason, from the `ready` check).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace onestory::service {

class MetricsHttpServer {
 public:
  // Listens on "host:port" (port 0 picks a free one). Returns the server, or UNAVAILABLE.
  // `ready` runs on the HTTP thread for each GET /readyz and may block (briefly).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<absl::Status()> ready);
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer();
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace onestory::service
