// JsonValue: one JSON value (RFC 8259) as a small owning tree, and ParseJsonObject, which reads
// one JSON object into it in one pass. The stored records (libs/engagement/records.h) and the
// agent tokens' header and claims (libs/auth/agent_tokens.h) are read with it.
//
//   absl::StatusOr<JsonValue> r = ParseJsonObject(R"({"s":"o","n":3,"oh":[{"t":1}]})");
//   if (const JsonValue* n = r->Find("n"); n != nullptr && n->is_number()) use(n->number());
//
// Why not google::protobuf::Struct (what this parser gave before): a Struct is a map of
// messages, one allocation and one hashed key per member, built and destroyed on every screen
// pop for each conversation, case and fact record shown. An object here is a vector of its
// members in the order given; Find is a linear scan, which for the records' 5–25 short keys is
// cheaper than hashing. ToStruct gives the Struct protobuf's JSON parser would.
//
// Numbers are doubles (as in JSON's usual reading and in Struct), strings are unescaped
// (\uXXXX, surrogate pairs included) and kept as the bytes given otherwise. Nesting deeper than
// 100 levels, trailing text, a key repeated within one object, and anything that is not JSON are
// INVALID_ARGUMENT naming the offset. Thread-safe (pure; a JsonValue is a value).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace onestory {

class JsonValue {
 public:
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  struct Member;

  JsonValue() = default;  // null

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // The value of its type; false, 0, "" or empty for a value of another type.
  bool boolean() const { return boolean_; }
  double number() const { return number_; }
  const std::string& string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }   // an array's
  const std::vector<Member>& members() const { return members_; }  // an object's, in order

  // An object's member named `key`; nullptr when there is none or this is not an object.
  const JsonValue* Find(absl::string_view key) const;

 private:
  friend class JsonParser;

  Type type_ = Type::kNull;
  bool boolean_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

struct JsonValue::Member {
  std::string key;
  JsonValue value;
};

// One JSON object (the whole text, spaces around it allowed); INVALID_ARGUMENT naming the offset
// and the reason otherwise. Whatever it accepts, google::protobuf::util::JsonStringToMessage
// accepts as a Struct too (for valid UTF-8: strings are kept as given, where protobuf checks
// them), and ToStruct of the result is that Struct.
absl::StatusOr<JsonValue> ParseJsonObject(absl::string_view json);

// `object` as a google::protobuf::Struct (an object's members; empty for any other value).
google::protobuf::Struct ToStruct(const JsonValue& object);

}  // namespace onestory
