#include "services/common/request_id.h"

#include <atomic>
#include <map>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"

namespace onestory::service {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr char kHeader[] = "x-request-id";
constexpr size_t kMaxLength = 128;
constexpr int kFailureLinesPerSecond = 20;

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

bool ServerSide(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::DATA_LOSS:
      return true;
    default:
      return false;
  }
}

// At most kFailureLinesPerSecond call.failed lines a second: a Redis outage fails every call,
// and the log must stay readable. Returns false for a line to drop; *dropped is the count
// dropped since the last line written.
bool MayLogFailure(int64_t* dropped) {
  static std::atomic<int64_t> second{0}, lines{0}, skipped{0};
  int64_t now = absl::ToUnixSeconds(absl::Now());
  int64_t was = second.load(std::memory_order_relaxed);
  if (now != was && second.compare_exchange_strong(was, now)) lines = 0;
  if (lines.fetch_add(1) >= kFailureLinesPerSecond) {
    skipped.fetch_add(1);
    return false;
  }
  *dropped = skipped.exchange(0);
  return true;
}

absl::string_view Ref(grpc::string_ref r) { return absl::string_view(r.data(), r.size()); }

class RequestIdInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit RequestIdInterceptor(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method() ? info->method() : ""), start_(absl::Now()) {
    absl::ConsumePrefix(&method_, "/");
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      // The id joins the call's metadata, so RequestIdOf finds it: the entry points into id_,
      // which lives as long as the call.
      std::multimap<grpc::string_ref, grpc::string_ref>* md = methods->GetRecvInitialMetadata();
      absl::string_view given, traceparent;
      for (auto it = md->begin(); it != md->end(); ++it) {
        if (Ref(it->first) == kHeader) given = Ref(it->second);
        if (Ref(it->first) == "traceparent") traceparent = Ref(it->second);
      }
      id_ = RequestIdFromHeaders(given, traceparent);
      if (id_.empty()) id_ = NewRequestId();
      md->erase(grpc::string_ref(kHeader));
      md->emplace(grpc::string_ref(kHeader), grpc::string_ref(id_));
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA) &&
        !id_.empty()) {
      methods->GetSendInitialMetadata()->emplace(kHeader, id_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        !id_.empty()) {
      grpc::Status status = methods->GetSendStatus();
      Report(status);
      if (!status.ok()) {
        methods->GetSendTrailingMetadata()->emplace(kHeader, id_);
        methods->ModifySendStatus(grpc::Status(
            status.error_code(), absl::StrCat(status.error_message(), " [request_id=", id_, "]"),
            status.error_details()));
      }
    }
    methods->Proceed();
  }

 private:
  void Report(const grpc::Status& status) {
    bool failed = ServerSide(status.error_code());
    if (!failed && !LogEnabled(LogLevel::kDebug)) return;
    int64_t dropped = 0;
    if (failed && !MayLogFailure(&dropped)) return;
    std::string code = absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
    std::string ms = absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - start_));
    if (!failed) {
      Log(LogLevel::kDebug, "call.done",
          {{"request_id", id_}, {"method", std::string(method_)}, {"code", code}, {"ms", ms}});
      return;
    }
    Log(LogLevel::kWarning, "call.failed",
        {{"request_id", id_},
         {"method", std::string(method_)},
         {"code", code},
         {"ms", ms},
         {"error", status.error_message()},
         {"lines_dropped_before", absl::StrCat(dropped)}});
  }

  absl::string_view method_;
  absl::Time start_;
  std::string id_;
};

}  // namespace

grpc::experimental::Interceptor* RequestIdInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RequestIdInterceptor(info);
}

std::string RequestIdOf(const grpc::ServerContextBase& ctx) {
  auto it = ctx.client_metadata().find(kHeader);
  if (it == ctx.client_metadata().end()) return "";
  // The interceptor's entry: it replaced any the caller sent.
  return std::string(it->second.data(), it->second.size());
}

std::string RequestIdFromHeaders(absl::string_view x_request_id, absl::string_view traceparent) {
  bool usable = !x_request_id.empty() && x_request_id.size() <= kMaxLength;
  for (char c : x_request_id) {
    usable = usable && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-');
  }
  if (usable) return std::string(x_request_id);
  // version "-" trace-id (32 hex, not all zero) "-" parent-id (16 hex) "-" flags (2 hex).
  std::vector<absl::string_view> parts = absl::StrSplit(traceparent, '-');
  if (parts.size() >= 4 && parts[0].size() == 2 && IsHex(parts[0]) && parts[0] != "ff" &&
      parts[1].size() == 32 && IsHex(parts[1]) && parts[1] != "00000000000000000000000000000000" &&
      parts[2].size() == 16 && IsHex(parts[2]) && parts[3].size() == 2 && IsHex(parts[3])) {
    return std::string(parts[1]);
  }
  return "";
}

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16),
                      absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
}

}  // namespace onestory::service
