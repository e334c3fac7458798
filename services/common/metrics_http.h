// MetricsHttpServer: serves the Prometheus text of metrics::Registry::Global() at GET /metrics
// on its own port (cpp-httplib from Debian), apart from the gRPC port.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace onestory::service {

class MetricsHttpServer {
 public:
  // Listens on "host:port" (port 0 picks a free one). Returns the server, or UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen);
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer();
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace onestory::service
