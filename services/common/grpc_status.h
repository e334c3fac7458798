// The one place absl::Status becomes grpc::Status, and request deadlines become absl::Time.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace onestory::service {

// Same code (Abseil's codes match gRPC's), same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The call's deadline, capped at now + max_wait (calls without a deadline get max_wait).
absl::Time RequestDeadline(const grpc::CallbackServerContext* ctx,
                           absl::Duration max_wait = absl::Seconds(30));

}  // namespace onestory::service
