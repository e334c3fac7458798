#include "services/common/grpc_status.h"

#include <chrono>
#include <string>

#include "absl/time/clock.h"

namespace onestory::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Time RequestDeadline(const grpc::CallbackServerContext* ctx, absl::Duration max_wait) {
  absl::Time cap = absl::Now() + max_wait;
  auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return cap;
  return std::min(cap, absl::FromChrono(deadline));
}

}  // namespace onestory::service
