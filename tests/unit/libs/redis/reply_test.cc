#include "libs/redis/reply.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace onestory::redis {
namespace {

// ---------------------------------------------------------------------------------------------
// ErrorToStatus: OS_* domain errors

TEST(ErrorToStatusTest, NotFound) {
  absl::Status st = ErrorToStatus("OS_NOT_FOUND customer x not found");
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "customer x not found");
}

TEST(ErrorToStatusTest, EveryDomainPrefix) {
  struct Case {
    absl::string_view text;
    absl::StatusCode code;
    absl::string_view message;
  };
  const Case cases[] = {
      {"OS_INVALID events[0].kind: required", absl::StatusCode::kInvalidArgument,
       "events[0].kind: required"},
      {"OS_NOT_FOUND customer cus_1 does not exist", absl::StatusCode::kNotFound,
       "customer cus_1 does not exist"},
      {"OS_CONFLICT identifier is linked to another customer",
       absl::StatusCode::kFailedPrecondition, "identifier is linked to another customer"},
      {"OS_EXISTS customer already exists", absl::StatusCode::kAlreadyExists,
       "customer already exists"},
      {"OS_LIMIT too many identifiers", absl::StatusCode::kResourceExhausted,
       "too many identifiers"},
  };
  for (const Case& c : cases) {
    absl::Status st = ErrorToStatus(c.text);
    EXPECT_EQ(st.code(), c.code) << c.text << " -> " << st;
    EXPECT_EQ(st.message(), c.message) << c.text;
  }
}

TEST(ErrorToStatusTest, ScriptPrefixedFormStillMapsAndDropsTheScriptSuffix) {
  absl::Status st = ErrorToStatus("ERR user_script:3: OS_LIMIT too many script: abc");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(st.message(), "too many");
}

TEST(ErrorToStatusTest, RedisSevenScriptErrorForm) {
  absl::Status st = ErrorToStatus(
      "ERR Error running script (call to f_0123456789abcdef): @user_script:12: "
      "OS_CONFLICT already merged script: 0123456789abcdef, on @user_script:12.");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(st.message(), "already merged");
}

TEST(ErrorToStatusTest, MarkerWithoutTrailingSpaceIsNotADomainError) {
  EXPECT_EQ(ErrorToStatus("OS_NOT_FOUNDcustomer").code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorToStatus("OS_LIMIT").code(), absl::StatusCode::kInternal);
}

// ---------------------------------------------------------------------------------------------
// ErrorToStatus: transient Redis errors

TEST(ErrorToStatusTest, TransientErrorsAreUnavailable) {
  for (absl::string_view text : {
           "LOADING Redis is loading the dataset in memory",
           "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
           "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
           "TRYAGAIN Multiple keys request during rehashing of slot",
           "CLUSTERDOWN The cluster is down",
       }) {
    absl::Status st = ErrorToStatus(text);
    EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << text << " -> " << st;
    EXPECT_NE(st.message().find(text), absl::string_view::npos) << st;
  }
}

TEST(ErrorToStatusTest, OtherErrorCodesThatOnlyStartLikeATransientOneAreInternal) {
  // BUG (libs/redis/reply.cc ErrorToStatus): the transient codes are matched with StartsWith, so
  // BUSYGROUP (XGROUP CREATE on an existing group) and BUSYKEY (RESTORE onto an existing key),
  // which are permanent errors, become UNAVAILABLE ("safe to retry"). The header promises
  // "anything else to INTERNAL". Suggested fix: compare the first word of the error (up to the
  // first space) with the list instead of StartsWith.
  for (absl::string_view text : {"BUSYGROUP Consumer Group name already exists",
                                 "BUSYKEY Target key name already exists."}) {
    EXPECT_EQ(ErrorToStatus(text).code(), absl::StatusCode::kInternal) << text;
  }
}

// ---------------------------------------------------------------------------------------------
// ErrorToStatus: Redis at its maxmemory

TEST(ErrorToStatusTest, OutOfMemoryIsResourceExhaustedAndSaysSo) {
  for (absl::string_view text : {
           "OOM command not allowed when used memory > 'maxmemory'.",
           "ERR Error running script (call to f_1): @user_script:1: OOM command not allowed when "
           "used memory > 'maxmemory'.",
       }) {
    absl::Status st = ErrorToStatus(text);
    EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << text << " -> " << st;
    EXPECT_NE(st.message().find("out of memory"), absl::string_view::npos) << st;
    EXPECT_NE(st.message().find("maxmemory"), absl::string_view::npos) << st;
  }
}

// ---------------------------------------------------------------------------------------------
// ErrorToStatus: everything else

TEST(ErrorToStatusTest, OtherErrorsAreInternalAndKeepTheText) {
  for (absl::string_view text : {
           "ERR unknown command 'FOO'",
           "WRONGTYPE Operation against a key holding the wrong kind of value",
           "NOSCRIPT No matching script. Please use EVAL.",
           "NOAUTH Authentication required.",
           "ERR Error running script: LOADING inside",
           "",
       }) {
    absl::Status st = ErrorToStatus(text);
    EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << text << " -> " << st;
    EXPECT_NE(st.message().find(text), absl::string_view::npos) << st;
  }
}

// ---------------------------------------------------------------------------------------------
// Reply

TEST(ReplyTest, DefaultIsNil) {
  Reply r;
  EXPECT_TRUE(r.is_nil());
  EXPECT_FALSE(r.is_array());
  EXPECT_FALSE(r.is_string());
}

TEST(ReplyTest, StringAndStatusAreStrings) {
  Reply r;
  r.type = Reply::Type::kString;
  EXPECT_TRUE(r.is_string());
  r.type = Reply::Type::kStatus;
  EXPECT_TRUE(r.is_string());
  r.type = Reply::Type::kError;
  EXPECT_FALSE(r.is_string());
  r.type = Reply::Type::kInteger;
  EXPECT_FALSE(r.is_string());
  r.type = Reply::Type::kArray;
  EXPECT_TRUE(r.is_array());
  EXPECT_FALSE(r.is_nil());
}

TEST(ReplyTest, FromNullHiredisReplyIsNil) { EXPECT_TRUE(Reply::FromHiredis(nullptr).is_nil()); }

TEST(ReplyTest, FromHiredisCopiesNestedReplies) {
  char field[] = "name";
  char value[] = {'A', '\0', 'n', 'n'};  // binary-safe: the length counts, not the NUL
  char error[] = "ERR nope";
  redisReply s1{}, s2{}, integer{}, nil{}, err{}, inner{}, outer{};
  s1.type = REDIS_REPLY_STRING;
  s1.str = field;
  s1.len = 4;
  s2.type = REDIS_REPLY_STRING;
  s2.str = value;
  s2.len = sizeof(value);
  integer.type = REDIS_REPLY_INTEGER;
  integer.integer = -42;
  nil.type = REDIS_REPLY_NIL;
  err.type = REDIS_REPLY_ERROR;
  err.str = error;
  err.len = 8;
  redisReply* inner_elements[] = {&integer, &nil};
  inner.type = REDIS_REPLY_ARRAY;
  inner.elements = 2;
  inner.element = inner_elements;
  redisReply* outer_elements[] = {&s1, &s2, &inner, &err};
  outer.type = REDIS_REPLY_ARRAY;
  outer.elements = 4;
  outer.element = outer_elements;

  Reply r = Reply::FromHiredis(&outer);
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(r.elements.size(), 4u);
  EXPECT_EQ(r.elements[0].type, Reply::Type::kString);
  EXPECT_EQ(r.elements[0].str, "name");
  EXPECT_EQ(r.elements[1].str, std::string("A\0nn", 4));
  ASSERT_TRUE(r.elements[2].is_array());
  ASSERT_EQ(r.elements[2].elements.size(), 2u);
  EXPECT_EQ(r.elements[2].elements[0].type, Reply::Type::kInteger);
  EXPECT_EQ(r.elements[2].elements[0].integer, -42);
  EXPECT_TRUE(r.elements[2].elements[1].is_nil());
  EXPECT_EQ(r.elements[3].type, Reply::Type::kError);
  EXPECT_EQ(r.elements[3].str, "ERR nope");
}

TEST(ReplyTest, FromHiredisStatusReply) {
  char ok[] = "OK";
  redisReply status{};
  status.type = REDIS_REPLY_STATUS;
  status.str = ok;
  status.len = 2;
  Reply r = Reply::FromHiredis(&status);
  EXPECT_EQ(r.type, Reply::Type::kStatus);
  EXPECT_TRUE(r.is_string());
  EXPECT_EQ(r.str, "OK");
}

// ---------------------------------------------------------------------------------------------
// ReplyReader: RESP parsed straight into Reply values

// Every reply the reader gives for `resp` fed in pieces of `chunk` bytes.
std::vector<Reply> ReadAll(const std::string& resp, size_t chunk, bool in_place = false) {
  ReplyReader reader;
  std::vector<Reply> out;
  for (size_t at = 0; at < resp.size(); at += chunk) {
    reader.Feed(resp.data() + at, std::min(chunk, resp.size() - at));
    for (;;) {
      absl::StatusOr<std::optional<Reply>> r = reader.Next(in_place);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok() || !r->has_value()) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

// The same replies through hiredis's own reader and reply objects, copied with FromHiredis.
std::vector<Reply> ReadAllThroughHiredis(const std::string& resp) {
  redisReader* reader = redisReaderCreate();
  EXPECT_EQ(redisReaderFeed(reader, resp.data(), resp.size()), REDIS_OK);
  std::vector<Reply> out;
  for (;;) {
    void* r = nullptr;
    EXPECT_EQ(redisReaderGetReply(reader, &r), REDIS_OK);
    if (r == nullptr) break;
    out.push_back(Reply::FromHiredis(static_cast<redisReply*>(r)));
    freeReplyObject(r);
  }
  redisReaderFree(reader);
  return out;
}

void ExpectSame(const Reply& a, const Reply& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  EXPECT_EQ(a.str, b.str) << where;
  EXPECT_EQ(a.integer, b.integer) << where;
  ASSERT_EQ(a.elements.size(), b.elements.size()) << where;
  for (size_t i = 0; i < a.elements.size(); ++i) {
    ExpectSame(a.elements[i], b.elements[i], where + "/" + std::to_string(i));
  }
}

// A status, an error, an integer, nils, an empty array, a binary string (with a CR and an LF in
// it), and an EXEC-like nesting: [[id, [field, value]], [], nil-array].
std::string EveryKindOfReply() {
  return std::string("+OK\r\n-ERR nope\r\n:-42\r\n$-1\r\n*-1\r\n*0\r\n") +
         std::string("$6\r\nA\0n\r\nn\r\n", 12) + "$0\r\n\r\n" +
         "*3\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\ne\r\n$5\r\nhello\r\n" + "*0\r\n*-1\r\n" +
         "*2\r\n:7\r\n*1\r\n*1\r\n+deep\r\n";
}

TEST(ReplyReaderTest, ParsesEveryTypeAsHiredisDoes) {
  const std::string resp = EveryKindOfReply();
  std::vector<Reply> expected = ReadAllThroughHiredis(resp);
  ASSERT_EQ(expected.size(), 10u);
  for (size_t chunk : {resp.size(), size_t{1}, size_t{3}, size_t{7}}) {
    std::vector<Reply> got = ReadAll(resp, chunk);
    ASSERT_EQ(got.size(), expected.size()) << chunk;
    for (size_t i = 0; i < got.size(); ++i) {
      ExpectSame(got[i], expected[i],
                 "chunk " + std::to_string(chunk) + " reply " + std::to_string(i));
    }
  }
  std::vector<Reply> got = ReadAll(resp, resp.size());
  EXPECT_EQ(got[0].type, Reply::Type::kStatus);
  EXPECT_EQ(got[1].type, Reply::Type::kError);
  EXPECT_EQ(got[1].str, "ERR nope");
  EXPECT_EQ(got[2].integer, -42);
  EXPECT_TRUE(got[3].is_nil());
  EXPECT_TRUE(got[4].is_nil());
  EXPECT_TRUE(got[5].is_array());
  EXPECT_EQ(got[6].str, std::string("A\0n\r\nn", 6));
  EXPECT_EQ(got[7].type, Reply::Type::kString);
  EXPECT_EQ(got[7].str, "");
  EXPECT_EQ(got[8].elements[0].elements[1].elements[1].str, "hello");
  EXPECT_EQ(got[9].elements[1].elements[0].elements[0].str, "deep");
}

TEST(ReplyReaderTest, ArraysReadInPlaceHoldTheirBytesAndTheValuesTheyParseTo) {
  // Arrays come read in place, to the same values; nil arrays and every other reply come as
  // usual.
  const std::string resp = EveryKindOfReply();
  std::vector<Reply> expected = ReadAll(resp, resp.size());
  ASSERT_EQ(expected.size(), 10u);
  for (size_t chunk : {resp.size(), size_t{1}, size_t{3}, size_t{7}}) {
    std::vector<Reply> got = ReadAll(resp, chunk, /*in_place=*/true);
    ASSERT_EQ(got.size(), expected.size()) << chunk;
    std::string bytes;
    for (size_t i = 0; i < got.size(); ++i) {
      std::string where = "chunk " + std::to_string(chunk) + " reply " + std::to_string(i);
      if (!expected[i].is_array()) {
        ExpectSame(got[i], expected[i], where);
        continue;
      }
      ASSERT_EQ(got[i].type, Reply::Type::kArrayView) << where;
      ASSERT_NE(got[i].view, nullptr) << where;
      absl::StrAppend(&bytes, got[i].view->bytes());
      ExpectSame(got[i].view->root().ToReply(), expected[i], where);
    }
    EXPECT_EQ(bytes, "*0\r\n*3\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\ne\r\n$5\r\nhello\r\n*0\r\n*-1\r\n"
                     "*2\r\n:7\r\n*1\r\n*1\r\n+deep\r\n");
  }
}

TEST(RespViewTest, ReadsValuesInPlace) {
  absl::StatusOr<RespView> view = RespView::Parse(
      "*4\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\ne\r\n$5\r\nhello\r\n$1\r\nm\r\n$-1\r\n"
      "*0\r\n:7\r\n-ERR no\r\n");
  ASSERT_TRUE(view.ok()) << view.status();
  RespView::Value root = view->root();
  ASSERT_TRUE(root.is_array());
  ASSERT_EQ(root.size(), 4u);
  std::vector<Reply::Type> types;
  for (RespView::Value v : root) types.push_back(v.type());
  EXPECT_EQ(types, (std::vector<Reply::Type>{Reply::Type::kArray, Reply::Type::kArray,
                                             Reply::Type::kInteger, Reply::Type::kError}));
  EXPECT_EQ(root[0][0].str(), "1-0");
  EXPECT_EQ(root[0][1].size(), 4u);
  EXPECT_EQ(root[0][1][1].str(), "hello");
  EXPECT_EQ(root[0][1][3].type(), Reply::Type::kNil);
  EXPECT_EQ(root[0][1][3].str(), "");
  EXPECT_EQ(root[1].size(), 0u);
  EXPECT_FALSE(root[1].begin() != root[1].end());
  EXPECT_EQ(root[2].integer(), 7);
  EXPECT_FALSE(root[2].begin() != root[2].end());  // not an array: no elements
  EXPECT_EQ(root[3].str(), "ERR no");
  // A view moved elsewhere (a string short enough to live inside it) reads from its new place.
  absl::StatusOr<RespView> small = RespView::Parse("$2\r\nab\r\n");
  ASSERT_TRUE(small.ok());
  RespView moved = *std::move(small);
  EXPECT_EQ(moved.root().str(), "ab");
}

TEST(RespViewTest, RefusesWhatIsNotExactlyOneReply) {
  std::string deep;
  for (int i = 0; i < 65; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  struct Case {
    std::string bytes;
    std::string message;
  };
  for (const Case& bad : std::vector<Case>{
           {"", "the reply ends early"},
           {"*2\r\n:1\r\n", "the reply ends early"},
           {"$5\r\nhel", "the reply ends early"},
           {"*3000\r\n:1\r\n", "the reply ends early"},  // more elements than bytes for them
           {":1\r\n:2\r\n", "bytes after the reply"},
           {"?what\r\n", "type byte ?"},
           {":1x\r\n", "an integer that is not a number"},
           {deep, "arrays nested deeper than 64"},
       }) {
    absl::StatusOr<RespView> view = RespView::Parse(bad.bytes);
    EXPECT_EQ(view.status().code(), absl::StatusCode::kInternal) << bad.bytes;
    EXPECT_EQ(view.status().message(), "not RESP2: " + bad.message) << bad.bytes;
  }
  ASSERT_TRUE(RespView::Parse(deep.substr(4)).ok());  // 64 deep is fine
}

TEST(ReplyReaderTest, ALargeReplyInManyPiecesComesWhole) {
  // 2,000 stream entries of 300 bytes each, fed as a socket would hand them over.
  std::string resp = "*2000\r\n";
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&resp, "*2\r\n$", std::to_string(i).size() + 2, "\r\n", i, "-0\r\n",
                    "*2\r\n$1\r\ne\r\n$300\r\n", std::string(300, 'a' + i % 26), "\r\n");
  }
  resp += ":1\r\n";
  std::vector<Reply> got = ReadAll(resp, 16384);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got[0].elements.size(), 2000u);
  EXPECT_EQ(got[0].elements[1999].elements[0].str, "1999-0");
  EXPECT_EQ(got[0].elements[1999].elements[1].elements[1].str, std::string(300, 'a' + 1999 % 26));
  EXPECT_EQ(got[1].integer, 1);
}

TEST(ReplyReaderTest, BytesThatAreNotRespAfterAPartialReplyAreAnError) {
  ReplyReader reader;
  reader.Feed("*3\r\n:1\r\n", 9);
  absl::StatusOr<std::optional<Reply>> r = reader.Next();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  reader.Feed("$2\r\nab\r\n?x\r\n", 13);
  r = reader.Next();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "type byte")) << r.status();
}

TEST(ReplyReaderTest, ReadsOnAfterALargeReplyReleasedItsBuffer) {
  ReplyReader reader;
  const std::string large = "$200000\r\n" + std::string(200000, 'x') + "\r\n";
  reader.Feed(large.data(), large.size());
  absl::StatusOr<std::optional<Reply>> r = reader.Next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->str.size(), 200000u);
  r = reader.Next();  // all read: the buffer is released here
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  reader.Feed("+OK\r\n", 5);
  r = reader.Next();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->str, "OK");
}

TEST(ReplyReaderTest, IntegersOverInt64sWholeRange) {
  std::vector<Reply> got =
      ReadAll(":9223372036854775807\r\n:-9223372036854775808\r\n:0\r\n:-0\r\n", 5);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].integer, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(got[1].integer, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(got[2].integer, 0);
  EXPECT_EQ(got[3].integer, 0);
}

TEST(ReplyReaderTest, AnUnfinishedReplyIsNotGiven) {
  std::vector<Reply> got = ReadAll("*3\r\n$1\r\na\r\n*2\r\n:1\r\n", 64);
  EXPECT_TRUE(got.empty());
  got = ReadAll("$5\r\nhel", 64);
  EXPECT_TRUE(got.empty());
}

// What Next says for `resp` fed whole: the first reply, or its error.
absl::StatusOr<std::optional<Reply>> First(absl::string_view resp) {
  ReplyReader reader;
  reader.Feed(resp.data(), resp.size());
  return reader.Next();
}

TEST(ReplyReaderTest, BytesThatAreNotRespAreAnError) {
  for (absl::string_view bad : {
           absl::string_view("?what\r\n"),                 // unknown type byte
           absl::string_view(":12x\r\n"),                  // not a number
           absl::string_view(":-\r\n"),                    // no digits
           absl::string_view(":9223372036854775808\r\n"),  // above int64
           absl::string_view("$-2\r\n"),                   // length below -1
           absl::string_view("$3\r\nabcd\r\n"),            // longer than its length
           absl::string_view("$999999999999\r\n"),         // above 512 MB
           absl::string_view("*-5\r\n"),                   // count below -1
           absl::string_view("+OK\rX\n"),                  // CR not followed by LF
       }) {
    absl::StatusOr<std::optional<Reply>> r = First(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << bad;
    EXPECT_TRUE(absl::StrContains(r.status().message(), "not RESP2")) << r.status();
  }
  std::string deep;
  for (int i = 0; i < 65; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  EXPECT_TRUE(absl::StrContains(First(deep).status().message(), "deeper than 64"));
  deep = deep.substr(4);  // 64 deep is fine
  ASSERT_TRUE(First(deep).ok());
  EXPECT_TRUE(First(deep)->has_value());
}

}  // namespace
}  // namespace onestory::redis
