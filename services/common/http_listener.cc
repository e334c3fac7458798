#include "services/common/http_listener.h"

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace onestory::service {

HttpListener::HttpListener() : http_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Bind(const std::string& listen,
                                                                 absl::string_view flag) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", listen, "': expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  auto l = std::unique_ptr<HttpListener>(new HttpListener());
  l->port_ = port == 0 ? l->http_->bind_to_any_port(host) : port;
  if (port != 0 && !l->http_->bind_to_port(host, port)) l->port_ = -1;
  if (l->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(flag, ": cannot listen on ", listen));
  }
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
