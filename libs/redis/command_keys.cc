#include "libs/redis/command_keys.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/redis/slot.h"

namespace onestory::redis {
namespace {

enum class KeyRule {
  kNone,        // server commands
  kFirst,       // argv[1]
  kAll,         // argv[1..]
  kEveryOther,  // argv[1], argv[3], ... (MSET)
  kNumKeys,     // argv[2] is the count, the keys follow (FCALL)
  kStreams,     // the first half of the arguments after STREAMS (XREAD)
};

const absl::flat_hash_map<std::string, KeyRule>& Rules() {
  // Grouped by rule, several to a line.
  // clang-format off
  static const auto* rules = new absl::flat_hash_map<std::string, KeyRule>{
      // Server and connection commands.
      {"PING", KeyRule::kNone}, {"ECHO", KeyRule::kNone}, {"INFO", KeyRule::kNone},
      {"CONFIG", KeyRule::kNone}, {"FUNCTION", KeyRule::kNone}, {"SCRIPT", KeyRule::kNone},
      {"TIME", KeyRule::kNone}, {"DBSIZE", KeyRule::kNone}, {"SCAN", KeyRule::kNone},
      {"KEYS", KeyRule::kNone}, {"FLUSHALL", KeyRule::kNone}, {"FLUSHDB", KeyRule::kNone},
      {"BGREWRITEAOF", KeyRule::kNone}, {"BGSAVE", KeyRule::kNone}, {"CLUSTER", KeyRule::kNone},
      {"COMMAND", KeyRule::kNone}, {"MEMORY", KeyRule::kNone}, {"CLIENT", KeyRule::kNone},
      {"READONLY", KeyRule::kNone}, {"READWRITE", KeyRule::kNone}, {"WAIT", KeyRule::kNone},
      {"LASTSAVE", KeyRule::kNone}, {"ACL", KeyRule::kNone}, {"SLOWLOG", KeyRule::kNone},
      // Functions (the client sends no EVAL: all Lua is the function library).
      {"FCALL", KeyRule::kNumKeys}, {"FCALL_RO", KeyRule::kNumKeys},
      // Several keys.
      {"DEL", KeyRule::kAll}, {"UNLINK", KeyRule::kAll}, {"EXISTS", KeyRule::kAll},
      {"MGET", KeyRule::kAll}, {"TOUCH", KeyRule::kAll}, {"MSET", KeyRule::kEveryOther},
      {"MSETNX", KeyRule::kEveryOther}, {"XREAD", KeyRule::kStreams},
      {"XREADGROUP", KeyRule::kStreams},
      // One key, first.
      {"GET", KeyRule::kFirst}, {"SET", KeyRule::kFirst}, {"SETNX", KeyRule::kFirst},
      {"SETEX", KeyRule::kFirst}, {"PSETEX", KeyRule::kFirst}, {"GETDEL", KeyRule::kFirst},
      {"GETSET", KeyRule::kFirst}, {"GETEX", KeyRule::kFirst}, {"APPEND", KeyRule::kFirst},
      {"STRLEN", KeyRule::kFirst}, {"INCR", KeyRule::kFirst}, {"INCRBY", KeyRule::kFirst},
      {"DECR", KeyRule::kFirst}, {"DECRBY", KeyRule::kFirst}, {"EXPIRE", KeyRule::kFirst},
      {"PEXPIRE", KeyRule::kFirst}, {"EXPIREAT", KeyRule::kFirst},
      {"PEXPIREAT", KeyRule::kFirst}, {"PERSIST", KeyRule::kFirst}, {"TTL", KeyRule::kFirst},
      {"PTTL", KeyRule::kFirst}, {"TYPE", KeyRule::kFirst}, {"DUMP", KeyRule::kFirst},
      {"RESTORE", KeyRule::kFirst}, {"HGET", KeyRule::kFirst}, {"HSET", KeyRule::kFirst},
      {"HSETNX", KeyRule::kFirst}, {"HMGET", KeyRule::kFirst}, {"HMSET", KeyRule::kFirst},
      {"HDEL", KeyRule::kFirst}, {"HGETALL", KeyRule::kFirst}, {"HKEYS", KeyRule::kFirst},
      {"HVALS", KeyRule::kFirst}, {"HLEN", KeyRule::kFirst}, {"HEXISTS", KeyRule::kFirst},
      {"HINCRBY", KeyRule::kFirst}, {"HSCAN", KeyRule::kFirst}, {"SADD", KeyRule::kFirst},
      {"SREM", KeyRule::kFirst}, {"SMEMBERS", KeyRule::kFirst}, {"SISMEMBER", KeyRule::kFirst},
      {"SCARD", KeyRule::kFirst}, {"SRANDMEMBER", KeyRule::kFirst}, {"SPOP", KeyRule::kFirst},
      {"SSCAN", KeyRule::kFirst}, {"ZADD", KeyRule::kFirst}, {"ZREM", KeyRule::kFirst},
      {"ZSCORE", KeyRule::kFirst}, {"ZCARD", KeyRule::kFirst}, {"ZCOUNT", KeyRule::kFirst},
      {"ZINCRBY", KeyRule::kFirst}, {"ZRANGE", KeyRule::kFirst},
      {"ZREVRANGE", KeyRule::kFirst}, {"ZRANGEBYSCORE", KeyRule::kFirst},
      {"ZREVRANGEBYSCORE", KeyRule::kFirst}, {"ZREMRANGEBYSCORE", KeyRule::kFirst},
      {"ZREMRANGEBYRANK", KeyRule::kFirst}, {"ZSCAN", KeyRule::kFirst},
      {"LPUSH", KeyRule::kFirst}, {"RPUSH", KeyRule::kFirst}, {"LPOP", KeyRule::kFirst},
      {"RPOP", KeyRule::kFirst}, {"LRANGE", KeyRule::kFirst}, {"LLEN", KeyRule::kFirst},
      {"LTRIM", KeyRule::kFirst}, {"XADD", KeyRule::kFirst}, {"XLEN", KeyRule::kFirst},
      {"XRANGE", KeyRule::kFirst}, {"XREVRANGE", KeyRule::kFirst}, {"XDEL", KeyRule::kFirst},
      {"XTRIM", KeyRule::kFirst}, {"SPUBLISH", KeyRule::kFirst},
  };
  // clang-format on
  return *rules;
}

// The commands IsWriteCommand() calls no write: reads, and server and connection commands.
// Beside Rules() so that a command added there is classed here too; anything missing counts
// as a write.
const absl::flat_hash_set<std::string>& NotWrites() {
  // clang-format off
  static const auto* not_writes = new absl::flat_hash_set<std::string>{
      // Server and connection commands: administration, not data a call stored. FUNCTION
      // LOAD reaches replicas by replication too, and a call that finds a function missing
      // loads it; FLUSHALL / FLUSHDB are for tests and tools.
      "PING", "ECHO", "INFO", "CONFIG", "FUNCTION", "SCRIPT", "TIME", "DBSIZE", "SCAN", "KEYS",
      "FLUSHALL", "FLUSHDB", "BGREWRITEAOF", "BGSAVE", "CLUSTER", "COMMAND", "MEMORY", "CLIENT",
      "READONLY", "READWRITE", "WAIT", "LASTSAVE", "ACL", "SLOWLOG", "ASKING", "AUTH", "HELLO",
      "SELECT", "PUBLISH", "SPUBLISH",
      // Reads.
      "FCALL_RO", "EXISTS", "MGET", "TOUCH", "XREAD", "GET", "STRLEN", "TTL", "PTTL", "TYPE",
      "DUMP", "HGET", "HMGET", "HGETALL", "HKEYS", "HVALS", "HLEN", "HEXISTS", "HSCAN",
      "SMEMBERS", "SISMEMBER", "SCARD", "SRANDMEMBER", "SSCAN", "ZSCORE", "ZCARD", "ZCOUNT",
      "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZSCAN", "LRANGE", "LLEN",
      "XLEN", "XRANGE", "XREVRANGE",
  };
  // clang-format on
  return *not_writes;
}

}  // namespace

bool IsWriteCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return true;
  // Upper-cased on the stack: this runs for every command sent. No command's name is longer.
  char upper[32];
  const std::string& name = argv[0];
  if (name.size() > sizeof(upper)) return true;
  for (size_t i = 0; i < name.size(); ++i) upper[i] = absl::ascii_toupper(name[i]);
  return !NotWrites().contains(absl::string_view(upper, name.size()));
}

absl::StatusOr<std::vector<std::string>> CommandKeys(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("redis command: empty");
  std::string name = absl::AsciiStrToUpper(argv[0]);
  auto it = Rules().find(name);
  if (it == Rules().end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis cluster: no key rule for command ", name,
                     " (libs/redis/command_keys.cc), so no shard to send it to"));
  }
  std::vector<std::string> keys;
  switch (it->second) {
    case KeyRule::kNone:
      break;
    case KeyRule::kFirst:
      if (argv.size() < 2) {
        return absl::InvalidArgumentError(absl::StrCat("redis command ", name, ": no key"));
      }
      keys.push_back(argv[1]);
      break;
    case KeyRule::kAll:
      keys.assign(argv.begin() + 1, argv.end());
      break;
    case KeyRule::kEveryOther:
      for (size_t i = 1; i < argv.size(); i += 2) keys.push_back(argv[i]);
      break;
    case KeyRule::kNumKeys: {
      size_t n = 0;
      if (argv.size() < 3 || !absl::SimpleAtoi(argv[2], &n) || 3 + n > argv.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("redis command ", name, ": numkeys is not a count of the arguments"));
      }
      keys.assign(argv.begin() + 3, argv.begin() + 3 + static_cast<std::ptrdiff_t>(n));
      break;
    }
    case KeyRule::kStreams: {
      size_t at = 1;
      while (at < argv.size() && absl::AsciiStrToUpper(argv[at]) != "STREAMS") ++at;
      size_t rest = at < argv.size() ? argv.size() - at - 1 : 0;
      if (rest == 0 || rest % 2 != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("redis command ", name, ": expected STREAMS key... id..."));
      }
      keys.assign(argv.begin() + static_cast<std::ptrdiff_t>(at + 1),
                  argv.begin() + static_cast<std::ptrdiff_t>(at + 1 + rest / 2));
      break;
    }
  }
  return keys;
}

absl::StatusOr<int> KeysSlot(absl::Span<const std::string> keys) {
  int slot = kAnySlot;
  for (const std::string& key : keys) {
    int s = KeySlot(key);
    if (slot == kAnySlot) {
      slot = s;
      continue;
    }
    if (s == slot) continue;
    std::vector<std::string> named;
    for (const std::string& k : keys) named.push_back(absl::StrCat(k, " (slot ", KeySlot(k), ")"));
    return absl::InvalidArgumentError(
        absl::StrCat("redis cluster: the keys of one call must share a hash slot; got ",
                     absl::StrJoin(named, ", ")));
  }
  return slot;
}

absl::StatusOr<int> CommandSlot(const std::vector<std::string>& argv) {
  absl::StatusOr<std::vector<std::string>> keys = CommandKeys(argv);
  if (!keys.ok()) return keys.status();
  return KeysSlot(*keys);
}

}  // namespace onestory::redis
