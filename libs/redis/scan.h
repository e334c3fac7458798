// ScanSync: every key of a single Redis that matches a pattern, for start-up steps and tools
// (the upgrades of data an earlier version wrote).
//
//   std::set<std::string> found;
//   absl::Status st = redis::ScanSync(client, "os:{*:a}:*", timeout, [&](const std::string& key) {
//     found.insert(key);
//     return absl::OkStatus();  // an error stops the scan and is returned
//   });
//
// SCAN with COUNT 1000 until its cursor comes back to 0, blocking the calling thread: never call
// it from the client's loop thread or a gRPC reactor. SCAN may pass a key twice: collect into a
// set. On a Redis Cluster SCAN would walk one node only: FAILED_PRECONDITION, nothing scanned.
#pragma once

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/redis/client.h"

namespace onestory::redis {

absl::Status ScanSync(Client* client, const std::string& pattern, absl::Duration timeout,
                      absl::FunctionRef<absl::Status(const std::string& key)> each);

}  // namespace onestory::redis
