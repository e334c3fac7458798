#include "libs/common/json_value.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace onestory {
namespace {

using google::protobuf::Struct;

// What protobuf's own JSON parser makes of `json`.
absl::StatusOr<Struct> Reference(const std::string& json) {
  Struct s;
  auto st = google::protobuf::util::JsonStringToMessage(json, &s);
  if (!st.ok()) return absl::InvalidArgumentError(st.ToString());
  return s;
}

TEST(ParseJsonObjectTest, GivesWhatProtobufsParserGives) {
  const std::vector<std::string> inputs = {
      "{}",
      " { } ",
      R"({"s":"o","n":3})",
      // A case record as the Function library's cjson writes it.
      R"({"s":"o","tp":"refund for order 8812","ot":1,"oi":"agent-7","op":1733400000123,)"
      R"("up":1733400000456,"cs":2,"rc":0,"oh":[{"t":1,"i":"agent-7","at":1733400000123}],)"
      R"("nt":"called back","nv":2,"pr":{"tx":"call back","due":1.7334e+12}})",
      R"({"a":[],"b":[1,2.5,-3,0,-0.0,1e3,1E-2,2.5e+10],"c":[[{}],[[]]],"d":null,"e":true,)"
      R"("f":false})",
      R"({"esc":"q\" b\\ s\/ \b\f\n\r\t","u":"\u00e9\u20ac\ud83d\ude00 \u0041","raw":"é€😀"})",
      R"({"big":12345678901234567890,"neg":-9007199254740993,"small":5e-324})",
      "{\n\t\"k\" :\r\n \"v\" \n}",
      // Whole numbers, on both sides of the 15 digits converted without SimpleAtod.
      R"({"w":[0,-0,7,-7,999999999999999,-999999999999999,1234567890123456,-1234567890123456]})",
  };
  for (const std::string& in : inputs) {
    absl::StatusOr<Struct> want = Reference(in);
    ASSERT_TRUE(want.ok()) << in << ": " << want.status();
    absl::StatusOr<JsonValue> got = ParseJsonObject(in);
    ASSERT_TRUE(got.ok()) << in << ": " << got.status();
    Struct as_struct = ToStruct(*got);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(as_struct, *want))
        << in << "\n got: " << as_struct.DebugString() << "\nwant: " << want->DebugString();
  }
}

TEST(ParseJsonObjectTest, MinusZeroKeepsItsSign) {
  absl::StatusOr<JsonValue> got = ParseJsonObject(R"({"z":-0,"p":0})");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(std::signbit(got->Find("z")->number()));
  EXPECT_FALSE(std::signbit(got->Find("p")->number()));
}

TEST(ParseJsonObjectTest, ValuesAreReadByTypeAndMembersInOrder) {
  absl::StatusOr<JsonValue> got =
      ParseJsonObject(R"({"s":"o","n":3,"t":true,"z":null,"oh":[{"i":"agent-7"},2],"e":{}})");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->is_object());
  std::vector<std::string> keys;
  for (const JsonValue::Member& m : got->members()) keys.push_back(m.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"s", "n", "t", "z", "oh", "e"}));
  const JsonValue* s = got->Find("s");
  const JsonValue* n = got->Find("n");
  const JsonValue* t = got->Find("t");
  const JsonValue* z = got->Find("z");
  const JsonValue* oh = got->Find("oh");
  const JsonValue* e = got->Find("e");
  for (const JsonValue* v : {s, n, t, z, oh, e}) ASSERT_NE(v, nullptr);
  EXPECT_TRUE(s->is_string());
  EXPECT_EQ(s->string(), "o");
  EXPECT_TRUE(n->is_number());
  EXPECT_EQ(n->number(), 3);
  EXPECT_TRUE(t->is_bool() && t->boolean());
  EXPECT_TRUE(z->is_null());
  ASSERT_TRUE(oh->is_array());
  ASSERT_EQ(oh->items().size(), 2u);
  const JsonValue* i = oh->items()[0].Find("i");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->string(), "agent-7");
  EXPECT_TRUE(oh->items()[1].is_number());
  EXPECT_TRUE(e->is_object() && e->members().empty());
  // Absent, and asked of what is not an object.
  EXPECT_EQ(got->Find("missing"), nullptr);
  EXPECT_EQ(s->Find("s"), nullptr);
  EXPECT_EQ(oh->Find("i"), nullptr);
  // A value of another type reads as its type's empty value.
  EXPECT_EQ(s->number(), 0);
  EXPECT_EQ(t->number(), 0);
  EXPECT_EQ(n->string(), "");
  EXPECT_EQ(e->string(), "");
  EXPECT_FALSE(n->boolean());
  EXPECT_FALSE(s->boolean());
  EXPECT_TRUE(e->items().empty());
  EXPECT_TRUE(oh->members().empty());
  EXPECT_TRUE(z->members().empty() && z->items().empty());
}

TEST(ParseJsonObjectTest, RepeatedKeysAreRefusedInShortAndLongObjects) {
  for (int members : {2, 40, 41, 500}) {
    std::string unique = "{", repeated = "{";
    for (int i = 0; i < members; ++i) {
      absl::StrAppend(&unique, i ? "," : "", "\"k", i, "\":", i);
      // The last key repeats the first.
      absl::StrAppend(&repeated, i ? "," : "", "\"k", i + 1 == members ? 0 : i, "\":", i);
    }
    unique += "}";
    repeated += "}";
    absl::StatusOr<JsonValue> ok = ParseJsonObject(unique);
    ASSERT_TRUE(ok.ok()) << members << ": " << ok.status();
    EXPECT_EQ(ok->members().size(), static_cast<size_t>(members));
    absl::StatusOr<JsonValue> got = ParseJsonObject(repeated);
    ASSERT_FALSE(got.ok()) << members;
    EXPECT_EQ(got.status().message(), "JSON at offset 0: repeated key in the object");
  }
  absl::StatusOr<JsonValue> nested = ParseJsonObject(R"({"a":1,"o":{"dup":1,"dup":2}})");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message(), "JSON at offset 11: repeated key in the object");
}

TEST(ParseJsonObjectTest, RefusesWhatIsNotAJsonObject) {
  const std::vector<std::string> inputs = {
      "",
      "[]",
      "\"s\"",
      "3",
      "{",
      "}",
      R"({"a":1,})",
      R"({"a" 1})",
      R"({a:1})",
      R"({'a':1})",
      R"({"a":01})",
      R"({"a":1.})",
      R"({"a":.5})",
      R"({"a":1e})",
      R"({"a":-})",
      R"({"a":+1})",
      R"({"a":tru})",
      R"({"a":nul})",
      R"({"a":NaN})",
      R"({"a":1.7e424})",
      R"({"a":-1e309})",
      R"({"a":"x)",
      R"({"a":"\x"})",
      R"({"a":"\u12"})",
      R"({"a":"\ud83d"})",
      R"({"a":"\ude00"})",
      "{\"a\":\"tab\there\"}",
      R"({"a":[1,]})",
      R"({"a":[1 2]})",
      R"({"a":1} x)",
      R"({"a":1}{})",
      R"({"dup":1,"dup":"two"})",
      R"({"o":{"dup":1,"dup":2}})",
  };
  for (const std::string& in : inputs) {
    absl::StatusOr<JsonValue> got = ParseJsonObject(in);
    EXPECT_FALSE(got.ok()) << "accepted: " << in;
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(got.status().message().find("offset"), absl::string_view::npos) << got.status();
    }
  }
}

TEST(ParseJsonObjectTest, NestingIsBounded) {
  std::string ok = "{\"a\":", deep = "{\"a\":";
  for (int i = 0; i < 98; ++i) ok += "[";
  ok += "1";
  for (int i = 0; i < 98; ++i) ok += "]";
  ok += "}";
  EXPECT_TRUE(ParseJsonObject(ok).ok()) << ParseJsonObject(ok).status();
  for (int i = 0; i < 5000; ++i) deep += "[";
  absl::StatusOr<JsonValue> got = ParseJsonObject(deep);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("nested too deeply"), absl::string_view::npos)
      << got.status();
}

}  // namespace
}  // namespace onestory
