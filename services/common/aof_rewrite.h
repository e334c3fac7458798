// AofRewriteScheduler: after an erase or a redaction, has Redis rewrite its append-only file,
// so the removed text leaves the disk too.
//
//   AofRewriteScheduler rewrites(redis, absl::Minutes(1));
//   ... after EraseCustomer or RedactEvent succeeded:
//   rewrites.Request();   // never blocks; coalesced
//
// Redis's append-only file logs every write, so text deleted from memory is still in the file
// until Redis rewrites it from memory (BGREWRITEAOF); on its own Redis does that only when the
// file has grown by 100% and is at least 64 MB, which a small install may never reach. Requests
// are coalesced: a rewrite starts at once when none started within `min_interval`, else when
// that interval is over; every request made before a rewrite starts is covered by it. A rewrite
// Redis refuses (one already running, which may have begun before the erase; Redis unreachable)
// is tried again every second until one starts.
//
// Only for a Redis whose files OneStory owns (the embedded default): an operator of another
// Redis schedules rewrites there (README "Privacy and audit"). Thread-safe.
#pragma once

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::service {

class AofRewriteScheduler {
 public:
  AofRewriteScheduler(redis::Client* redis, absl::Duration min_interval);
  ~AofRewriteScheduler();  // stops; a rewrite already started goes on inside Redis

  // Asks for a rewrite that starts after this call.
  void Request();

  // Rewrites Redis accepted since start.
  uint64_t started() const;

 private:
  void Loop();

  redis::Client* redis_;
  const absl::Duration min_interval_;
  mutable absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t started_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace onestory::service
