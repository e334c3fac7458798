// The timeline as a merge reads and rebuilds it: stream ids as numbers, stored entries with
// their decoded events and merge tags, a whole stream read in chunks, and the activity and open
// conversations recomputed from events (as timeline_append keeps them).
//
//   ReadStream(client, ck.timeline(), deadline, [](absl::StatusOr<std::vector<Entry>> t) {...});
//   Derived d = Recompute(entries);  // d.activity, d.conversations
//
// Internal to libs/merge. Thread-compatible (plain values).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/redis/client.h"
#include "libs/timeline/cursor.h"
#include "libs/timeline/stream_entry.h"
#include "onestory/v1/timeline.pb.h"

namespace onestory::merge {

using timeline::ParseStreamId;
using timeline::StreamId;

// One timeline entry as stored (its fields as timeline::ParseStreamEntry reads them: id, blob,
// tag, appended), with its event decoded and what a merge plans for it.
struct Entry : timeline::StreamEntry {
  v1::Event event;
  std::string old_id;  // the id before a merge renumbered it
  bool from_source = false;
};

// An XRANGE item; INTERNAL for a malformed one or an undecodable event.
absl::StatusOr<Entry> ParseEntry(const redis::Reply& r);

// The ms the entry was first stored (StoredAtMs), as its 'a' field is written.
std::string AppendedMs(const Entry& e);

// An entry's merge tags: the merges that brought it here, innermost first ("m1,m2" for an event
// of A appended after A was merged into B by m1 and B into C by m2). An Unmerge of m takes the
// entries tagged with m and gives them back with m removed.
bool HasTag(absl::string_view tags, absl::string_view merge_id);
std::string WithoutTag(absl::string_view tags, absl::string_view merge_id);
std::string WithTag(absl::string_view tags, absl::string_view merge_id);

// Activity and open conversations as the append function keeps them, recomputed from events in
// timeline order.
struct Derived {
  std::map<std::string, int64_t> activity;           // "act:<channel>" -> ms
  std::map<std::string, std::string> conversations;  // id -> "first|last|n|channel"
};
Derived Recompute(const std::vector<const Entry*>& entries);

// Reads a whole stream in chunks of kReadChunk entries.
inline constexpr size_t kReadChunk = 1000;
void ReadStream(redis::Client* client, std::string key, absl::Time deadline,
                Callback<std::vector<Entry>> done);

}  // namespace onestory::merge
