// HttpListener: a cpp-httplib server bound to "host:port" (port 0 picks a free one) and serving
// on a thread of its own until destroyed. The metrics endpoint and the HTTP/JSON gateway each
// own one. Each connection is served on a thread of its own (cpp-httplib blocks a thread per
// connection, and a Server-Sent Events stream holds its connection for hours), started when the
// connection comes, up to `max_threads`; connections beyond wait for a thread. With TlsFiles, it
// serves HTTPS (cpp-httplib's SSLServer, OpenSSL).
//
//   auto l = HttpListener::Bind("127.0.0.1:0", "--http_listen", /*max_threads=*/8);
//   (*l)->server().Get("/x", handler);
//   (*l)->Serve();
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace httplib {
class Server;
}

namespace onestory::service {

class HttpListener {
 public:
  // PEM files; with client_ca, clients must present a certificate signed by it.
  struct TlsFiles {
    std::string cert;
    std::string key;
    std::string client_ca;
    bool enabled() const { return !cert.empty(); }
  };

  // INVALID_ARGUMENT naming `flag` when listen is not host:port, or when the TLS files cannot be
  // loaded; UNAVAILABLE when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Bind(const std::string& listen,
                                                            absl::string_view flag, int max_threads,
                                                            const TlsFiles& tls = {});
  ~HttpListener();

  // Add routes and handlers here before Serve.
  httplib::Server& server() { return *http_; }
  void Serve();
  int port() const { return port_; }

 private:
  HttpListener(std::unique_ptr<httplib::Server> http, int max_threads);
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace onestory::service
