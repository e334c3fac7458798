// Which arguments of a command are keys, and so which hash slot a command must be sent to on
// Redis Cluster.
//
//   absl::StatusOr<int> slot = redis::CommandSlot({"HGET", "os:{acme:c:1}:p", "name"});
//
// The rules cover the commands OneStory sends, as COMMAND GETKEYS would answer them: FCALL /
// FCALL_RO by their declared keys (no EVAL: all Lua is the function library); DEL, UNLINK, EXISTS,
// MGET, TOUCH by every argument; MSET by every other one; XREAD / XREADGROUP by the names after
// STREAMS; the single-key commands (GET, HSET, XADD, ZADD, ...) by their first argument; and
// server commands (PING, INFO, FUNCTION, CONFIG, SCAN, SLOWLOG, ...) by none. A command outside
// the table is refused rather than guessed: sent to the wrong shard it would fail with MOVED at
// best.
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace onestory::redis {

// The slot for a command with no key: any primary may run it.
inline constexpr int kAnySlot = -1;

// The keys of argv (a command and its arguments). INVALID_ARGUMENT for a command with no rule
// here, or whose arguments do not fit its rule (a key count larger than the arguments).
absl::StatusOr<std::vector<std::string>> CommandKeys(const std::vector<std::string>& argv);

// The slot all of keys share; kAnySlot for none. INVALID_ARGUMENT naming the keys and their
// slots when they span more than one slot (Redis Cluster runs one call on one shard).
absl::StatusOr<int> KeysSlot(absl::Span<const std::string> keys);

// KeysSlot(CommandKeys(argv)).
absl::StatusOr<int> CommandSlot(const std::vector<std::string>& argv);

// Whether argv may change data that Redis replicates, so that Options::wait_replicas waits for
// it: false only for the commands listed as reads (GET, HGETALL, XRANGE, FCALL_RO, ...) and
// for server and connection commands (PING, INFO, CLUSTER, FUNCTION, CONFIG, ASKING, WAIT,
// FLUSHALL, PUBLISH, ...: administration, not the data of a call); true for FCALL and
// every other command, a command outside the list too (a write never goes unconfirmed because
// a name was missing here).
bool IsWriteCommand(const std::vector<std::string>& argv);

}  // namespace onestory::redis
