// Barrier: joins N asynchronous operations started in parallel, and calls `done` once, when the
// last of them has arrived, with the first error any of them reported (OK when none did).
//
//   auto b = Barrier::Make(keys.size(), [run](absl::Status st) {
//     if (!st.ok()) return run->done(st);
//     NextStep(run);
//   });
//   for (const std::string& k : keys) {
//     client->Command({"DEL", k}, deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status());
//     });
//   }
//
// Each operation calls Arrive exactly once. With a count of 0, Make calls `done(OK)` before it
// returns. `done` runs on the thread of the last Arrive (for Redis replies, the event-loop
// thread) and must not block. Thread-safe: operations may arrive from any thread at once.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace onestory {

class Barrier {
 public:
  // Shared: every operation's callback holds it until it arrives.
  static std::shared_ptr<Barrier> Make(size_t count, absl::AnyInvocable<void(absl::Status)> done) {
    auto b = std::shared_ptr<Barrier>(new Barrier(count, std::move(done)));
    if (count == 0) b->done_(absl::OkStatus());
    return b;
  }

  // One operation has finished with `st`; the first error is kept, later ones are dropped.
  void Arrive(const absl::Status& st) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      if (!st.ok() && status_.ok()) status_ = st;
      last = --left_ == 0;
    }
    // Read without the lock: no operation is left to write it.
    if (last) done_(status_);
  }

 private:
  Barrier(size_t count, absl::AnyInvocable<void(absl::Status)> done)
      : left_(count), done_(std::move(done)) {}

  absl::Mutex mu_;
  size_t left_ ABSL_GUARDED_BY(mu_);
  absl::Status status_;
  absl::AnyInvocable<void(absl::Status)> done_;
};

}  // namespace onestory
