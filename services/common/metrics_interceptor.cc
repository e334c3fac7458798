#include "services/common/metrics_interceptor.h"

#include <array>
#include <atomic>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/metrics/metrics.h"

namespace onestory::service {
namespace {

constexpr std::array<const char*, 17> kCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// The series of one method, created on its first call, labelled as ready-made gRPC dashboards
// expect: grpc_service ("onestory.v1.TimelineService"), grpc_method ("Append"), grpc_type
// (unary, client_stream, server_stream, bidi_stream) and, once handled, grpc_code.
struct MethodSeries {
  metrics::Labels labels;
  metrics::Counter* started;
  metrics::Histogram* seconds;
  // By code, created on first use (under mu): a call reads its code's without a lock.
  std::array<std::atomic<metrics::Counter*>, 17> handled{};
  absl::Mutex mu;
};

const char* TypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY:
      return "unary";
    case Type::CLIENT_STREAMING:
      return "client_stream";
    case Type::SERVER_STREAMING:
      return "server_stream";
    case Type::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unknown";
}

// `path`: "/<service>/<method>".
MethodSeries* SeriesFor(absl::string_view path, grpc::experimental::ServerRpcInfo::Type type) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* by_path = new absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>>();
  {
    absl::ReaderMutexLock lock(&mu);
    auto it = by_path->find(path);
    if (it != by_path->end()) return it->second.get();
  }
  absl::MutexLock lock(&mu);
  auto& slot = (*by_path)[path];
  if (!slot) {
    slot = std::make_unique<MethodSeries>();
    absl::string_view name = path;
    absl::ConsumePrefix(&name, "/");
    size_t slash = name.rfind('/');
    absl::string_view service =
        slash == absl::string_view::npos ? "unknown" : name.substr(0, slash);
    absl::string_view method = slash == absl::string_view::npos ? name : name.substr(slash + 1);
    slot->labels = {{"grpc_service", std::string(service)},
                    {"grpc_method", std::string(method)},
                    {"grpc_type", TypeName(type)}};
    auto& r = metrics::Registry::Global();
    slot->started =
        r.GetCounter("grpc_server_started_total", "RPCs started on the server", slot->labels);
    slot->seconds =
        r.GetHistogram("grpc_server_handling_seconds",
                       "Time from an RPC's start to its status being sent", slot->labels);
  }
  return slot.get();
}

metrics::Counter* HandledCounter(MethodSeries* s, int code) {
  if (code < 0 || code >= 17) code = 2;  // UNKNOWN
  if (metrics::Counter* c = s->handled[code].load(std::memory_order_acquire)) return c;
  absl::MutexLock lock(&s->mu);
  metrics::Counter* c = s->handled[code].load(std::memory_order_relaxed);
  if (c == nullptr) {
    metrics::Labels labels = s->labels;
    labels.emplace_back("grpc_code", kCodeNames[code]);
    c = metrics::Registry::Global().GetCounter(
        "grpc_server_handled_total", "RPCs completed on the server, by status code", labels);
    s->handled[code].store(c, std::memory_order_release);
  }
  return c;
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(grpc::experimental::ServerRpcInfo* info)
      : series_(SeriesFor(info->method() ? info->method() : "/unknown", info->type())),
        start_(absl::Now()) {
    series_->started->Increment();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      series_->seconds->Observe(absl::ToDoubleSeconds(absl::Now() - start_));
      HandledCounter(series_, status.error_code())->Increment();
    }
    methods->Proceed();
  }

 private:
  MethodSeries* series_;
  absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(info);
}

}  // namespace onestory::service
