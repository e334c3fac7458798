#include "libs/common/json_struct.h"

#include <cmath>
#include <string>
#include <vector>

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
    absl::StatusOr<Struct> got = ParseJsonObject(in);
    ASSERT_TRUE(got.ok()) << in << ": " << got.status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*got, *want))
        << in << "\n got: " << got->DebugString() << "\nwant: " << want->DebugString();
  }
}

TEST(ParseJsonObjectTest, MinusZeroKeepsItsSign) {
  absl::StatusOr<Struct> got = ParseJsonObject(R"({"z":-0,"p":0})");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(std::signbit(got->fields().at("z").number_value()));
  EXPECT_FALSE(std::signbit(got->fields().at("p").number_value()));
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
    absl::StatusOr<Struct> got = ParseJsonObject(in);
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
  absl::StatusOr<Struct> got = ParseJsonObject(deep);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("nested too deeply"), absl::string_view::npos)
      << got.status();
}

}  // namespace
}  // namespace onestory
