// Hash slots of Redis Cluster: which of the 16384 slots a key belongs to.
//
//   int slot = redis::KeySlot("os:{acme:c:cus_1}:tl");  // the slot of "acme:c:cus_1"
//
// As the Redis Cluster specification defines it: CRC16 (XMODEM: polynomial 0x1021, initial
// value 0) of the key modulo 16384, where a key holding a hash tag is hashed by the tag alone.
// The tag is what lies between the first '{' and the first '}' after it, when that is not
// empty; "foo{}{bar}" has no tag (the whole key is hashed), "foo{{bar}}" has the tag "{bar".
// All keys of one customer carry one tag, so they share a slot (and a shard).
// Thread-safe (pure functions).
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace onestory::redis {

inline constexpr int kClusterSlots = 16384;

// CRC16-XMODEM of data (the checksum Redis Cluster hashes keys with): "123456789" -> 0x31C3.
uint16_t Crc16(absl::string_view data);

// The part of key that is hashed: its hash tag when it has a non-empty one, else the whole key.
absl::string_view HashTag(absl::string_view key);

// The slot of key, in [0, 16384).
int KeySlot(absl::string_view key);

}  // namespace onestory::redis
