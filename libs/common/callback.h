// Callback<T>: how every asynchronous store operation delivers its result.
//
//   void GetProfile(..., Callback<v1::Profile> done);
//   store.GetProfile(..., [](absl::StatusOr<v1::Profile> p) { ... });
//
// A callback is called exactly once, on the Redis event-loop thread (or on the caller's thread
// when the request is rejected before reaching Redis). It must not block.
#pragma once

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"

namespace onestory {

template <typename T>
using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;

}  // namespace onestory
