// A timeline stream entry as stored: the one codec for reading it, used by every reader of a
// timeline stream (List, Watch and GetContext here, the merge's staging in libs/merge, redaction
// and export in libs/privacy).
//
//   ASSIGN_OR_RETURN(StreamEntry stored, ParseStreamEntry(xrange_item));
//   ASSIGN_OR_RETURN(v1::Event event, stored.Event(customer_id));  // with its output fields
//
// StreamEntryView is the same entry read in place, its fields pointing into the reply (no
// copies): for readers that serialize events straight from the reply (GetContext).
//
// An entry's fields (written by the Lua of libs/timeline, libs/engagement and libs/merge):
//   e  the event, a serialized v1::Event without its output fields (customer_id, cursor,
//      appended_at)
//   m  its merge tags (merge::WithTag), on entries a merge brought from another customer
//   a  the ms it was first stored, on entries a merge renumbered (their stream id no longer says)
// Unknown fields are ignored, so a later version can add one.
//
// Thread-compatible (plain values).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/redis/reply.h"
#include "libs/timeline/cursor.h"
#include "onestory/v1/common.pb.h"

namespace onestory::timeline {

// An entry's fields as parts of the reply it was read from, which must outlive it.
struct StreamEntryView {
  absl::string_view id;        // the stream id, "<ms>-<seq>"
  absl::string_view blob;      // 'e': the serialized event
  absl::string_view tag;       // 'm': merge tags, empty when none
  absl::string_view appended;  // 'a': ms first stored, empty when the stream id says it

  // The ms the entry was first stored: `appended`, else the stream id's.
  int64_t StoredAtMs() const;
  // The event with its output fields set for `customer_id` (the timeline's owner): customer_id,
  // cursor (naming this entry) and appended_at (StoredAtMs). INTERNAL when `blob` does not decode.
  absl::StatusOr<v1::Event> Event(const std::string& customer_id) const;
  // The event's visibility, read from `blob` without decoding the rest; INTERNAL when its
  // fields do not parse.
  absl::StatusOr<v1::Audience> Visibility() const;
  // Appends to *out what StreamEntry::Event(cursors.customer_id()) serializes to, without
  // decoding `blob`: the blob, then a serialized Event holding only the output fields. Protobuf
  // parses two serialized messages in a row as their merge, and the blob holds no output field.
  void AppendSerializedEvent(const CursorWriter& cursors, std::string* out) const;
};

struct StreamEntry {
  std::string id;        // the stream id, "<ms>-<seq>"
  std::string blob;      // 'e': the serialized event
  std::string tag;       // 'm': merge tags, empty when none
  std::string appended;  // 'a': ms first stored, empty when the stream id says it

  StreamEntryView view() const { return {id, blob, tag, appended}; }
  int64_t StoredAtMs() const { return view().StoredAtMs(); }
  absl::StatusOr<v1::Event> Event(const std::string& customer_id) const {
    return view().Event(customer_id);
  }
  absl::StatusOr<v1::Audience> Visibility() const { return view().Visibility(); }
  void AppendSerializedEvent(absl::string_view customer_id, std::string* out) const {
    view().AppendSerializedEvent(CursorWriter(customer_id), out);
  }
};

// An XRANGE item read in place; INTERNAL for a malformed one.
absl::StatusOr<StreamEntryView> ParseStreamEntryView(const redis::Reply& item);
// The same from a reply read in place (RespView), which must outlive the entry.
absl::StatusOr<StreamEntryView> ParseStreamEntryView(redis::RespView::Value item);

// An XRANGE item, [id, [field, value, ...]]; INTERNAL for a malformed one.
absl::StatusOr<StreamEntry> ParseStreamEntry(const redis::Reply& item);
// The same from the id and the field list given apart (a function's reply holding them among
// other values).
absl::StatusOr<StreamEntry> ParseStreamEntry(const redis::Reply& id, const redis::Reply& fields);

// What a function that appends publishes on the customer's notify channel
// (libs/timeline/lua/effects.lua): the newest stream id ("<id>"), or, when the call stored one
// event of at most 64 KiB, that entry ("<id>\n<blob>"), so a watcher that is caught up sends it
// without reading it back. The entry of such a message (id and blob, pointing into `message`);
// nullopt for a message that carries none (a bare id, "merged", "erased", ...).
std::optional<StreamEntryView> PublishedEntry(absl::string_view message);

// An XRANGE item's event with its output fields for `customer_id`: ParseStreamEntry, then
// StreamEntry::Event.
absl::StatusOr<v1::Event> EventFromEntry(const std::string& customer_id, const redis::Reply& item);

}  // namespace onestory::timeline
