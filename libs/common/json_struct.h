// ParseJsonObject: one JSON object (RFC 8259) into a google::protobuf::Struct, with the result
// google::protobuf::util::JsonStringToMessage gives for a Struct, in one pass over the text.
//
//   absl::StatusOr<google::protobuf::Struct> s = ParseJsonObject(R"({"s":"o","n":3})");
//
// Why not protobuf's parser: it goes through its descriptor-driven converter (a stream parser,
// an object writer, a binary round trip), which made parsing the stored case and conversation
// records about a tenth of the server's CPU per GetContext. The records are written by the
// Function library's Lua (cjson) and read on every screen pop.
//
// Numbers become doubles (as in Struct), strings are unescaped (\uXXXX, surrogate pairs
// included) and kept as the bytes given otherwise. Nesting deeper than 100 levels, trailing
// text, a key repeated within one object, and anything that is not JSON are INVALID_ARGUMENT naming
// the offset. Thread-safe (pure).
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace onestory {

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json);

}  // namespace onestory
