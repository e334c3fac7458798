#include "services/common/metrics_interceptor.h"

#include <array>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/metrics/metrics.h"

namespace onestory::service {
namespace {

constexpr std::array<const char*, 17> kCodeNames = {
    "OK",           "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",    "DATA_LOSS",
    "UNAUTHENTICATED"};

// The series of one method, created on its first call.
struct MethodSeries {
  metrics::Counter* started;
  metrics::Histogram* seconds;
  std::array<metrics::Counter*, 17> handled{};  // by code, created on first use
  absl::Mutex mu;
};

MethodSeries* SeriesFor(const std::string& method) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* by_method = new absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>>();
  {
    absl::ReaderMutexLock lock(&mu);
    auto it = by_method->find(method);
    if (it != by_method->end()) return it->second.get();
  }
  absl::MutexLock lock(&mu);
  auto& slot = (*by_method)[method];
  if (!slot) {
    slot = std::make_unique<MethodSeries>();
    auto& r = metrics::Registry::Global();
    slot->started = r.GetCounter("grpc_server_started_total", "RPCs started on the server",
                                 {{"grpc_method", method}});
    slot->seconds = r.GetHistogram("grpc_server_handling_seconds",
                                   "Time from an RPC's start to its status being sent",
                                   {{"grpc_method", method}});
  }
  return slot.get();
}

metrics::Counter* HandledCounter(MethodSeries* s, const std::string& method, int code) {
  if (code < 0 || code >= 17) code = 2;  // UNKNOWN
  absl::MutexLock lock(&s->mu);
  if (s->handled[code] == nullptr) {
    s->handled[code] = metrics::Registry::Global().GetCounter(
        "grpc_server_handled_total", "RPCs completed on the server, by status code",
        {{"grpc_method", method}, {"grpc_code", kCodeNames[code]}});
  }
  return s->handled[code];
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method() ? info->method() : "unknown"),
        series_(SeriesFor(method_)),
        start_(absl::Now()) {
    series_->started->Increment();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      series_->seconds->Observe(absl::ToDoubleSeconds(absl::Now() - start_));
      HandledCounter(series_, method_, status.error_code())->Increment();
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  MethodSeries* series_;
  absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(info);
}

}  // namespace onestory::service
