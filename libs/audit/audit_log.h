// The audit log: per tenant, one entry per call that read or changed a customer's data (who:
// the API key id; what: the RPC; when; on which customer; the outcome), in a Redis stream
// (keys::TenantKeys::audit_log) that nothing but age trimming removes from.
//
//   AuditLog audit(redis, AuditLog::Options{});
//   v1::AuditEntry e;  e.set_key_id("console-eu");  e.set_method("...");  ...
//   audit.Record("acme", std::move(e));             // asynchronous; never blocks
//   audit.List(request, deadline, [](absl::StatusOr<v1::ListAuditEntriesResponse> r) {...});
//
// Entries hold no personal data: customer ids, identifier types (never values), counts, event
// ids and the caller's free-text reason. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "onestory/v1/privacy.pb.h"

namespace onestory::audit {

class AuditLog {
 public:
  struct Options {
    // Entries older than this are trimmed as new ones arrive (XADD MINID ~).
    absl::Duration retention = absl::Hours(24 * 400);
  };
  AuditLog(redis::Client* redis, Options options) : redis_(redis), options_(options) {}

  // Appends `entry` to the tenant's log (`at` is set to now when unset). Asynchronous: a
  // failure is logged and counted (failures()), never reported to the caller's RPC, which has
  // already been answered.
  void Record(absl::string_view tenant, v1::AuditEntry entry);

  // Newest first. INVALID_ARGUMENT for page_size or page_token.
  void List(const v1::ListAuditEntriesRequest& request, absl::Time deadline,
            Callback<v1::ListAuditEntriesResponse> done);

  uint64_t recorded() const { return recorded_.load(); }
  uint64_t failures() const { return failures_.load(); }

 private:
  redis::Client* redis_;
  Options options_;
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> failures_{0};
};

}  // namespace onestory::audit
