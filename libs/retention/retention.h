// Retention per tenant: how long events are kept, how many per customer, and when an inactive
// customer expires entirely. Read from a file (--retention_file), applied at every append
// (libs/timeline/event_effects.h) and by the Sweeper (libs/retention/sweeper.h).
//
//   # <tenant or *> [max_age=<n><s|m|h|d>] [max_events=<n>] [inactive_after=<n><s|m|h|d>]
//   *     max_events=10000 max_age=365d
//   acme  max_age=90d inactive_after=730d     # max_events=10000 from '*'
//   bigco max_events=0                        # 0: no limit (max_age=365d from '*')
//
//   retention::Policy policy;                       // no file: DefaultLimits() for every tenant
//   RETURN_IF_ERROR(policy.Load("/etc/onestory/retention"));
//   retention::Limits l = policy.For("acme");       // on every append: cheap
//   policy.Reload();                                // SIGHUP: an error keeps the old rules
//
// A tenant's line names only what differs from the '*' line (or, without one, from
// DefaultLimits()); a value of 0 removes a limit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace onestory::retention {

struct Limits {
  // Events stored longer ago than this are removed (by stream position: the time an event was
  // stored, or first stored before a merge moved it). Zero: kept however old.
  absl::Duration max_age = absl::ZeroDuration();
  // At most this many events per customer: the oldest go first. Zero: no limit.
  int64_t max_events = 0;
  // A customer with no event stored for this long is erased entirely (the Sweeper calls the
  // erase function). Zero: never.
  absl::Duration inactive_after = absl::ZeroDuration();

  friend bool operator==(const Limits& a, const Limits& b) {
    return a.max_age == b.max_age && a.max_events == b.max_events &&
           a.inactive_after == b.inactive_after;
  }
};

// The limits of every tenant when there is no file, and the base of the '*' line:
// max_events = kDefaultMaxEvents, no max_age, never inactive.
inline constexpr int64_t kDefaultMaxEvents = 100000;
Limits DefaultLimits();

// A parsed retention file.
struct Rules {
  Limits fallback = DefaultLimits();                 // '*', for tenants not listed
  absl::flat_hash_map<std::string, Limits> tenants;  // resolved: fields the line omits are '*'s
};

// Parses the file format above. INVALID_ARGUMENT naming the line ("line 3: max_age: ...") for
// an unknown setting, a bad number or unit, a negative value, an invalid tenant, or a tenant (or
// '*') listed twice. Thread-safe (pure).
absl::StatusOr<Rules> ParseRules(absl::string_view text);

// The rules in force. Thread-safe: For() may run on every thread while Load() or Reload()
// replaces the rules.
class Policy {
 public:
  Policy();  // DefaultLimits() for every tenant until Load()
  explicit Policy(Rules rules);

  // Reads and parses `path` and remembers it for Reload(). On error (NOT_FOUND or
  // PERMISSION_DENIED for the file, INVALID_ARGUMENT naming the file and line) the rules in
  // force stay.
  absl::Status Load(const std::string& path);
  // Load() of the path given last. FAILED_PRECONDITION when Load() was never called.
  absl::Status Reload();
  // Replaces the rules (tests, tools).
  void Set(Rules rules);

  // The limits of `tenant`. Cheap (a reader lock and one hash lookup): called on every append.
  Limits For(absl::string_view tenant) const;

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const Rules> rules_ ABSL_GUARDED_BY(mu_);
  std::string path_ ABSL_GUARDED_BY(mu_);
};

}  // namespace onestory::retention
