#include "libs/timeline/stream_entry.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/timeline/cursor.h"

namespace onestory::timeline {

int64_t StreamEntry::StoredAtMs() const {
  int64_t ms = 0;
  if (!appended.empty() && absl::SimpleAtoi(appended, &ms)) return ms;
  return StreamIdMillis(id);
}

absl::StatusOr<v1::Event> StreamEntry::Event(const std::string& customer_id) const {
  v1::Event e;
  if (!e.ParseFromString(blob))
    return absl::InternalError(absl::StrCat("undecodable event at ", id));
  e.set_customer_id(customer_id);
  e.set_cursor(EncodeCursor(customer_id, id));
  *e.mutable_appended_at() = FromMillis(StoredAtMs());
  return e;
}

absl::StatusOr<v1::Audience> StreamEntry::Visibility() const {
  using google::protobuf::internal::WireFormatLite;
  constexpr uint32_t kVisibilityTag =
      WireFormatLite::MakeTag(v1::Event::kVisibilityFieldNumber, WireFormatLite::WIRETYPE_VARINT);
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(blob.data()),
                                            static_cast<int>(blob.size()));
  uint32_t visibility = 0;  // the last one wins, as when parsing
  while (uint32_t tag = in.ReadTag()) {
    bool ok =
        tag == kVisibilityTag ? in.ReadVarint32(&visibility) : WireFormatLite::SkipField(&in, tag);
    if (!ok) break;
  }
  if (!in.ConsumedEntireMessage()) {
    return absl::InternalError(absl::StrCat("undecodable event at ", id));
  }
  return static_cast<v1::Audience>(visibility);
}

void StreamEntry::AppendSerializedEvent(const std::string& customer_id, std::string* out) const {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  // The output fields written as protobuf serializes them (in field order, zero values left
  // out), without building and destroying an Event per event: that was most of GetContext's
  // per-event cost.
  const std::string cursor = EncodeCursor(customer_id, id);
  const google::protobuf::Timestamp at = FromMillis(StoredAtMs());
  const int64_t seconds = at.seconds();
  const int32_t nanos = at.nanos();
  size_t at_size = 0;
  if (seconds != 0) at_size += 1 + WireFormatLite::Int64Size(seconds);
  if (nanos != 0) at_size += 1 + WireFormatLite::Int32Size(nanos);

  out->append(blob);
  size_t start = out->size();
  out->resize(start + 3 * (2 + 5) + customer_id.size() + cursor.size() + at_size);
  uint8_t* p = reinterpret_cast<uint8_t*>(out->data() + start);
  if (!customer_id.empty()) {
    p = WireFormatLite::WriteStringToArray(v1::Event::kCustomerIdFieldNumber, customer_id, p);
  }
  if (!cursor.empty()) {
    p = WireFormatLite::WriteStringToArray(v1::Event::kCursorFieldNumber, cursor, p);
  }
  p = WireFormatLite::WriteTagToArray(v1::Event::kAppendedAtFieldNumber,
                                      WireFormatLite::WIRETYPE_LENGTH_DELIMITED, p);
  p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(at_size), p);
  if (seconds != 0) p = WireFormatLite::WriteInt64ToArray(1, seconds, p);
  if (nanos != 0) p = WireFormatLite::WriteInt32ToArray(2, nanos, p);
  out->resize(static_cast<size_t>(reinterpret_cast<char*>(p) - out->data()));
}

absl::StatusOr<StreamEntry> ParseStreamEntry(const redis::Reply& item) {
  if (!item.is_array() || item.elements.size() != 2) {
    return absl::InternalError("malformed timeline entry");
  }
  return ParseStreamEntry(item.elements[0], item.elements[1]);
}

absl::StatusOr<StreamEntry> ParseStreamEntry(const redis::Reply& id, const redis::Reply& fields) {
  if (!id.is_string() || !fields.is_array()) return absl::InternalError("malformed timeline entry");
  StreamEntry out;
  out.id = id.str;
  const auto& f = fields.elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) {
    if (f[i].str == "e") out.blob = f[i + 1].str;
    if (f[i].str == "m") out.tag = f[i + 1].str;
    if (f[i].str == "a") out.appended = f[i + 1].str;
  }
  return out;
}

absl::StatusOr<v1::Event> EventFromEntry(const std::string& customer_id, const redis::Reply& item) {
  ASSIGN_OR_RETURN(StreamEntry stored, ParseStreamEntry(item));
  return stored.Event(customer_id);
}

}  // namespace onestory::timeline
