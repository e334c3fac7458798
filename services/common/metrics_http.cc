#include "services/common/metrics_http.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "libs/metrics/metrics.h"

namespace onestory::service {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<absl::Status()> ready) {
  auto l = HttpListener::Bind(listen, "--metrics_listen", /*max_threads=*/8);
  if (!l.ok()) return l.status();
  auto s = std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer());
  s->http_ = *std::move(l);
  httplib::Server& http = s->http_->server();
  http.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics::Registry::Global().Render(), "text/plain; version=0.0.4");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  http.Get("/readyz", [ready = std::move(ready)](const httplib::Request&, httplib::Response& res) {
    absl::Status st = ready();
    res.status = st.ok() ? 200 : 503;
    res.set_content(st.ok() ? "ready\n" : absl::StrCat("not ready: ", st.message(), "\n"),
                    "text/plain");
  });
  s->http_->Serve();
  return s;
}

}  // namespace onestory::service
