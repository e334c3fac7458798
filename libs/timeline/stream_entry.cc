#include "libs/timeline/stream_entry.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/timeline/cursor.h"

namespace onestory::timeline {

namespace {

// Sets the entry's field `name` (one it knows) to `value`.
void SetField(absl::string_view name, absl::string_view value, StreamEntryView* out) {
  if (name.size() != 1) return;
  switch (name[0]) {
    case 'e':
      out->blob = value;
      break;
    case 'm':
      out->tag = value;
      break;
    case 'a':
      out->appended = value;
      break;
  }
}

// The field list of an XRANGE item, [id, [field, value, ...]], read in place.
absl::StatusOr<StreamEntryView> View(const redis::Reply& id, const redis::Reply& fields) {
  if (!id.is_string() || !fields.is_array()) return absl::InternalError("malformed timeline entry");
  StreamEntryView out;
  out.id = id.str;
  const auto& f = fields.elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) SetField(f[i].str, f[i + 1].str, &out);
  return out;
}

// Reads a varint at *p (before end); false when it runs past end or over ten bytes.
bool ReadVarint(const uint8_t** p, const uint8_t* end, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t byte = *(*p)++;
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// Visibility over the wire types Event's fields use (varint, 64-bit, length-delimited, 32-bit);
// nullopt for anything else (a group, a malformed field), which the general reader decides.
std::optional<uint32_t> FastVisibility(absl::string_view blob) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(blob.data());
  const uint8_t* end = p + blob.size();
  uint32_t visibility = 0;  // the last one wins, as when parsing
  while (p < end) {
    uint64_t tag = 0;
    uint64_t value = 0;
    if (!ReadVarint(&p, end, &tag) || tag > 0xffffffff || (tag >> 3) == 0) return std::nullopt;
    switch (tag & 7) {
      case 0:
        if (!ReadVarint(&p, end, &value)) return std::nullopt;
        if ((tag >> 3) == v1::Event::kVisibilityFieldNumber)
          visibility = static_cast<uint32_t>(value);
        break;
      case 1:
        if (end - p < 8) return std::nullopt;
        p += 8;
        break;
      case 2:
        if (!ReadVarint(&p, end, &value) || value > static_cast<uint64_t>(end - p)) {
          return std::nullopt;
        }
        p += value;
        break;
      case 5:
        if (end - p < 4) return std::nullopt;
        p += 4;
        break;
      default:
        return std::nullopt;
    }
  }
  return visibility;
}

}  // namespace

int64_t StreamEntryView::StoredAtMs() const {
  int64_t ms = 0;
  if (!appended.empty() && absl::SimpleAtoi(appended, &ms)) return ms;
  return StreamIdMillis(id);
}

absl::StatusOr<v1::Event> StreamEntryView::Event(const std::string& customer_id) const {
  v1::Event e;
  if (!e.ParseFromArray(blob.data(), static_cast<int>(blob.size())))
    return absl::InternalError(absl::StrCat("undecodable event at ", id));
  e.set_customer_id(customer_id);
  e.set_cursor(EncodeCursor(customer_id, id));
  *e.mutable_appended_at() = FromMillis(StoredAtMs());
  return e;
}

absl::StatusOr<v1::Audience> StreamEntryView::Visibility() const {
  if (std::optional<uint32_t> fast = FastVisibility(blob)) {
    return static_cast<v1::Audience>(*fast);
  }
  // Groups and malformed blobs: protobuf's reader says which.
  using google::protobuf::internal::WireFormatLite;
  constexpr uint32_t kVisibilityTag =
      WireFormatLite::MakeTag(v1::Event::kVisibilityFieldNumber, WireFormatLite::WIRETYPE_VARINT);
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(blob.data()),
                                            static_cast<int>(blob.size()));
  uint32_t visibility = 0;
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

void StreamEntryView::AppendSerializedEvent(const CursorWriter& cursors, std::string* out) const {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  // The output fields written as protobuf serializes them (in field order, zero values left
  // out), without building and destroying an Event per event: that was most of GetContext's
  // per-event cost. The cursor is written in place too.
  const std::string& customer_id = cursors.customer_id();
  const size_t cursor_size = cursors.Size(id);
  const SecondsNanos at = SplitMillis(StoredAtMs());
  size_t at_size = 0;
  if (at.seconds != 0) at_size += 1 + WireFormatLite::Int64Size(at.seconds);
  if (at.nanos != 0) at_size += 1 + WireFormatLite::Int32Size(at.nanos);

  // Room for the blob and every output field (three tags and lengths of at most 2 + 5 bytes).
  const size_t start = out->size();
  out->resize(start + blob.size() + 3 * (2 + 5) + customer_id.size() + cursor_size + at_size);
  uint8_t* p = reinterpret_cast<uint8_t*>(out->data() + start);
  auto put = [&p](absl::string_view bytes) {
    std::memcpy(p, bytes.data(), bytes.size());
    p += bytes.size();
  };
  auto write_length = [&p](int field, size_t size) {
    p = WireFormatLite::WriteTagToArray(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, p);
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), p);
  };
  put(blob);
  if (!customer_id.empty()) {
    write_length(v1::Event::kCustomerIdFieldNumber, customer_id.size());
    put(customer_id);
  }
  write_length(v1::Event::kCursorFieldNumber, cursor_size);  // never empty: "c1|" at least
  p = reinterpret_cast<uint8_t*>(cursors.Write(id, reinterpret_cast<char*>(p)));
  write_length(v1::Event::kAppendedAtFieldNumber, at_size);
  if (at.seconds != 0) p = WireFormatLite::WriteInt64ToArray(1, at.seconds, p);
  if (at.nanos != 0) p = WireFormatLite::WriteInt32ToArray(2, at.nanos, p);
  out->resize(static_cast<size_t>(reinterpret_cast<char*>(p) - out->data()));
}

absl::StatusOr<StreamEntryView> ParseStreamEntryView(const redis::Reply& item) {
  if (!item.is_array() || item.elements.size() != 2) {
    return absl::InternalError("malformed timeline entry");
  }
  return View(item.elements[0], item.elements[1]);
}

absl::StatusOr<StreamEntryView> ParseStreamEntryView(redis::RespView::Value item) {
  if (!item.is_array() || item.size() != 2) return absl::InternalError("malformed timeline entry");
  redis::RespView::Value id = item[0];
  redis::RespView::Value fields = item[1];
  if (!id.is_string() || !fields.is_array()) {
    return absl::InternalError("malformed timeline entry");
  }
  StreamEntryView out;
  out.id = id.str();
  absl::string_view name;
  bool is_name = true;  // fields alternate: name, value
  for (redis::RespView::Value f : fields) {
    if (is_name) {
      name = f.str();
    } else {
      SetField(name, f.str(), &out);
    }
    is_name = !is_name;
  }
  return out;
}

absl::StatusOr<StreamEntry> ParseStreamEntry(const redis::Reply& item) {
  if (!item.is_array() || item.elements.size() != 2) {
    return absl::InternalError("malformed timeline entry");
  }
  return ParseStreamEntry(item.elements[0], item.elements[1]);
}

absl::StatusOr<StreamEntry> ParseStreamEntry(const redis::Reply& id, const redis::Reply& fields) {
  absl::StatusOr<StreamEntryView> v = View(id, fields);
  if (!v.ok()) return v.status();
  return StreamEntry{std::string(v->id), std::string(v->blob), std::string(v->tag),
                     std::string(v->appended)};
}

std::optional<StreamEntryView> PublishedEntry(absl::string_view message) {
  size_t newline = message.find('\n');
  if (newline == absl::string_view::npos) return std::nullopt;
  StreamEntryView entry;
  entry.id = message.substr(0, newline);
  entry.blob = message.substr(newline + 1);
  if (!IsStreamId(entry.id)) return std::nullopt;
  return entry;
}

absl::StatusOr<v1::Event> EventFromEntry(const std::string& customer_id, const redis::Reply& item) {
  ASSIGN_OR_RETURN(StreamEntry stored, ParseStreamEntry(item));
  return stored.Event(customer_id);
}

}  // namespace onestory::timeline
