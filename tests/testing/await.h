// Await: calls an asynchronous store operation and waits for its Callback<T>. Tests only.
//
//   absl::StatusOr<v1::Profile> p = Await<v1::Profile>([&](Callback<v1::Profile> done) {
//     store.GetProfile("acme", id, Deadline(), std::move(done));
//   });
#pragma once

#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/common/callback.h"

namespace onestory::testing {

template <typename T, typename Fn>
absl::StatusOr<T> Await(Fn&& start) {
  absl::Notification done;
  absl::StatusOr<T> result = absl::UnknownError("not called");
  start(Callback<T>([&](absl::StatusOr<T> r) {
    result = std::move(r);
    done.Notify();
  }));
  done.WaitForNotification();
  return result;
}

inline absl::Time Deadline(absl::Duration d = absl::Seconds(5)) { return absl::Now() + d; }

}  // namespace onestory::testing
