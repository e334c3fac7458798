#include "libs/timeline/event_validation.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "gtest/gtest.h"
#include "libs/common/time_util.h"
#include "onestory/v1/common.pb.h"

namespace onestory::timeline {
namespace {

using Events = google::protobuf::RepeatedPtrField<v1::Event>;

constexpr int64_t kNowMs = 1700000000000;  // 2023-11-14T22:13:20Z

// An INVALID_ARGUMENT status whose message starts with `prefix` (the field it names).
MATCHER_P(InvalidArgumentStartingWith, prefix, "") {
  *result_listener << "status is " << arg;
  return arg.code() == absl::StatusCode::kInvalidArgument &&
         absl::StartsWith(arg.message(), absl::string_view(prefix));
}

// The smallest valid event: a customer's chat message.
v1::Event ValidEvent() {
  v1::Event e;
  e.set_channel(v1::CHANNEL_WEB_CHAT);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  return e;
}

Events One(const v1::Event& e) {
  Events events;
  *events.Add() = e;
  return events;
}

Events Many(int n) {
  Events events;
  for (int i = 0; i < n; ++i) *events.Add() = ValidEvent();
  return events;
}

// The status of preparing a single event.
absl::Status PrepareOne(const v1::Event& e) { return PrepareEvents(One(e), kNowMs).status(); }

// The prepared form of a single valid event.
v1::Event PreparedOne(const v1::Event& e) {
  absl::StatusOr<std::vector<v1::Event>> out = PrepareEvents(One(e), kNowMs);
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok() || out->size() != 1) return v1::Event();
  return (*out)[0];
}

// ---------------------------------------------------------------------------------------------
// The request as a whole

TEST(PrepareEventsTest, ValidEventPasses) {
  absl::StatusOr<std::vector<v1::Event>> out = PrepareEvents(One(ValidEvent()), kNowMs);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].channel(), v1::CHANNEL_WEB_CHAT);
  EXPECT_EQ((*out)[0].kind(), v1::EVENT_KIND_MESSAGE);
}

TEST(PrepareEventsTest, EmptyListIsRejected) {
  EXPECT_THAT(PrepareEvents(Events(), kNowMs).status(), InvalidArgumentStartingWith("events: "));
}

TEST(PrepareEventsTest, FiveHundredEventsIsTheLimit) {
  absl::StatusOr<std::vector<v1::Event>> ok = PrepareEvents(Many(kMaxEventsPerAppend), kNowMs);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), static_cast<size_t>(kMaxEventsPerAppend));
  EXPECT_THAT(PrepareEvents(Many(kMaxEventsPerAppend + 1), kNowMs).status(),
              InvalidArgumentStartingWith("events: at most 500"));
}

TEST(PrepareEventsTest, MoreThanFourMebibytesIsRejected) {
  // 70 events with 60 KiB bodies: each body is within its limit, the request is over 4 MiB.
  Events events;
  for (int i = 0; i < 70; ++i) {
    v1::Event e = ValidEvent();
    e.set_body(std::string(60 * 1024, 'x'));
    *events.Add() = e;
  }
  EXPECT_THAT(PrepareEvents(events, kNowMs).status(),
              InvalidArgumentStartingWith("events: at most 4194304 bytes"));
}

TEST(PrepareEventsTest, JustUnderFourMebibytesPasses) {
  // 63 events with full 64 KiB bodies: about 4,129,000 bytes.
  Events events;
  for (int i = 0; i < 63; ++i) {
    v1::Event e = ValidEvent();
    e.set_body(std::string(kMaxBodyBytes, 'x'));
    *events.Add() = e;
  }
  EXPECT_TRUE(PrepareEvents(events, kNowMs).ok());
}

TEST(PrepareEventsTest, ErrorsNameTheIndexOfTheBadEvent) {
  Events events = Many(4);
  events.Mutable(2)->clear_channel();
  EXPECT_THAT(PrepareEvents(events, kNowMs).status(),
              InvalidArgumentStartingWith("events[2].channel: "));
}

TEST(PrepareEventsTest, InputIsNotModified) {
  Events events = One(ValidEvent());
  events.Mutable(0)->set_customer_id("cus_x");
  std::string before = events.Get(0).SerializeAsString();
  ASSERT_TRUE(PrepareEvents(events, kNowMs).ok());
  EXPECT_EQ(events.Get(0).SerializeAsString(), before);
}

TEST(PrepareEventsTest, OrderIsKept) {
  Events events;
  for (int i = 0; i < 5; ++i) {
    v1::Event e = ValidEvent();
    e.set_event_id(absl::StrCat("ev-", i));
    *events.Add() = e;
  }
  absl::StatusOr<std::vector<v1::Event>> out = PrepareEvents(events, kNowMs);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*out)[i].event_id(), absl::StrCat("ev-", i));
}

// ---------------------------------------------------------------------------------------------
// event_id

TEST(PrepareEventsTest, EmptyEventIdIsGenerated) {
  absl::StatusOr<std::vector<v1::Event>> out = PrepareEvents(Many(2), kNowMs);
  ASSERT_TRUE(out.ok()) << out.status();
  const std::string& a = (*out)[0].event_id();
  const std::string& b = (*out)[1].event_id();
  EXPECT_TRUE(absl::StartsWith(a, "ev_")) << a;
  EXPECT_EQ(a.size(), 3u + 26u) << a;
  EXPECT_TRUE(absl::StartsWith(b, "ev_")) << b;
  EXPECT_NE(a, b);
}

TEST(PrepareEventsTest, GivenEventIdIsKept) {
  v1::Event e = ValidEvent();
  e.set_event_id("client-42:retry/1");
  EXPECT_EQ(PreparedOne(e).event_id(), "client-42:retry/1");
}

TEST(PrepareEventsTest, EventIdWithSpaceOrControlIsRejected) {
  for (absl::string_view bad : {"ev 1", " ev1", "ev\n1", "ev\t1", "\xc3\xa9v"}) {
    v1::Event e = ValidEvent();
    e.set_event_id(std::string(bad));
    EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].event_id: ")) << bad;
  }
}

TEST(PrepareEventsTest, EventIdOf128BytesIsTheLimit) {
  v1::Event e = ValidEvent();
  e.set_event_id(std::string(kMaxEventIdBytes, 'e'));
  EXPECT_TRUE(PrepareOne(e).ok());
  e.set_event_id(std::string(kMaxEventIdBytes + 1, 'e'));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].event_id: "));
}

TEST(PrepareEventsTest, DuplicateEventIdsWithinARequestAreRejected) {
  Events events = Many(3);
  events.Mutable(0)->set_event_id("ev-1");
  events.Mutable(1)->set_event_id("ev-1");
  EXPECT_THAT(PrepareEvents(events, kNowMs).status(),
              InvalidArgumentStartingWith("events[1].event_id: "));

  Events later = Many(3);
  later.Mutable(0)->set_event_id("ev-1");
  later.Mutable(2)->set_event_id("ev-1");
  EXPECT_THAT(PrepareEvents(later, kNowMs).status(),
              InvalidArgumentStartingWith("events[2].event_id: "));
}

// ---------------------------------------------------------------------------------------------
// channel, kind, actor

TEST(PrepareEventsTest, ChannelIsRequiredAndMustBeKnown) {
  v1::Event e = ValidEvent();
  e.set_channel(v1::CHANNEL_UNSPECIFIED);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].channel: "));
  e.set_channel(static_cast<v1::Channel>(99));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].channel: "));
  e.set_channel(static_cast<v1::Channel>(-3));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].channel: "));
}

TEST(PrepareEventsTest, EveryKnownChannelIsAccepted) {
  for (int c = v1::Channel_MIN; c <= v1::Channel_MAX; ++c) {
    if (c == v1::CHANNEL_UNSPECIFIED || !v1::Channel_IsValid(c)) continue;
    v1::Event e = ValidEvent();
    e.set_channel(static_cast<v1::Channel>(c));
    EXPECT_TRUE(PrepareOne(e).ok()) << "channel " << c;
  }
}

TEST(PrepareEventsTest, KindIsRequiredAndMustBeKnown) {
  v1::Event e = ValidEvent();
  e.set_kind(v1::EVENT_KIND_UNSPECIFIED);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].kind: "));
  e.set_kind(static_cast<v1::EventKind>(99));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].kind: "));
}

TEST(PrepareEventsTest, ActorTypeIsRequiredAndMustBeKnown) {
  v1::Event e = ValidEvent();
  e.clear_actor();
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].actor.type: "));
  e.mutable_actor()->set_type(v1::Actor::TYPE_UNSPECIFIED);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].actor.type: "));
  e.mutable_actor()->set_type(static_cast<v1::Actor::Type>(99));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].actor.type: "));
}

TEST(PrepareEventsTest, ActorIdRequiredForAgentAndBot) {
  for (v1::Actor::Type type : {v1::Actor::TYPE_AGENT, v1::Actor::TYPE_BOT}) {
    v1::Event e = ValidEvent();
    e.mutable_actor()->set_type(type);
    EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].actor.id: ")) << type;
    e.mutable_actor()->set_id("agent-7");
    EXPECT_TRUE(PrepareOne(e).ok()) << type;
  }
}

TEST(PrepareEventsTest, ActorIdOptionalForCustomerAndSystem) {
  for (v1::Actor::Type type : {v1::Actor::TYPE_CUSTOMER, v1::Actor::TYPE_SYSTEM}) {
    v1::Event e = ValidEvent();
    e.mutable_actor()->set_type(type);
    EXPECT_TRUE(PrepareOne(e).ok()) << type;
  }
}

TEST(PrepareEventsTest, ActorIdMustBeAPrintableTokenOfAtMost128Bytes) {
  v1::Event e = ValidEvent();
  e.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  e.mutable_actor()->set_id("agent 7");
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].actor.id: "));
  e.mutable_actor()->set_id(std::string(kMaxRefIdBytes, 'a'));
  EXPECT_TRUE(PrepareOne(e).ok());
  e.mutable_actor()->set_id(std::string(kMaxRefIdBytes + 1, 'a'));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].actor.id: "));
}

// ---------------------------------------------------------------------------------------------
// occurred_at

TEST(PrepareEventsTest, OccurredAtDefaultsToNow) {
  v1::Event out = PreparedOne(ValidEvent());
  ASSERT_TRUE(out.has_occurred_at());
  EXPECT_EQ(ToMillis(out.occurred_at()), kNowMs);
}

TEST(PrepareEventsTest, OccurredAtIsKeptWhenGiven) {
  v1::Event e = ValidEvent();
  *e.mutable_occurred_at() = FromMillis(kNowMs - 86400000);
  EXPECT_EQ(ToMillis(PreparedOne(e).occurred_at()), kNowMs - 86400000);
}

TEST(PrepareEventsTest, OccurredAtAtMostOneHourInTheFuture) {
  v1::Event e = ValidEvent();
  *e.mutable_occurred_at() = FromMillis(kNowMs + kMaxFutureSkewMs);
  EXPECT_TRUE(PrepareOne(e).ok());
  *e.mutable_occurred_at() = FromMillis(kNowMs + kMaxFutureSkewMs + 1);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
  *e.mutable_occurred_at() = FromMillis(kNowMs + 365LL * 86400000);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
}

TEST(PrepareEventsTest, OccurredAtBefore1970IsRejected) {
  v1::Event e = ValidEvent();
  e.mutable_occurred_at()->set_seconds(-1);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
  e.mutable_occurred_at()->set_seconds(0);
  EXPECT_TRUE(PrepareOne(e).ok());
}

TEST(PrepareEventsTest, OccurredAtWithInvalidNanosIsRejected) {
  v1::Event e = ValidEvent();
  e.mutable_occurred_at()->set_seconds(1700000000);
  e.mutable_occurred_at()->set_nanos(-1);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
  e.mutable_occurred_at()->set_nanos(1000000000);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
  e.mutable_occurred_at()->set_nanos(999999999);
  EXPECT_TRUE(PrepareOne(e).ok());
}

TEST(PrepareEventsTest, OccurredAtFarBeyondInt64MillisIsRejected) {
  // BUG (libs/common/time_util.cc ToMillis, used by libs/timeline/event_validation.cc): seconds *
  // 1000 overflows int64 for seconds > 9223372036854775, wrapping to a past (negative) time, so
  // a timestamp trillions of years ahead passes the "at most one hour in the future" check.
  // Expected: INVALID_ARGUMENT. Suggested fix: reject seconds above the protobuf Timestamp
  // maximum (253402300799, year 9999) before converting, or saturate in ToMillis.
  v1::Event e = ValidEvent();
  e.mutable_occurred_at()->set_seconds(std::numeric_limits<int64_t>::max());
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
  e.mutable_occurred_at()->set_seconds(std::numeric_limits<int64_t>::max() / 1000 + 1);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].occurred_at: "));
}

// ---------------------------------------------------------------------------------------------
// summary, body, sentiment

TEST(PrepareEventsTest, SummaryOf1024BytesIsTheLimit) {
  v1::Event e = ValidEvent();
  e.set_summary(std::string(kMaxSummaryBytes, 's'));
  EXPECT_TRUE(PrepareOne(e).ok());
  e.set_summary(std::string(kMaxSummaryBytes + 1, 's'));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].summary: "));
}

TEST(PrepareEventsTest, SummaryWithControlCharacterIsRejected) {
  v1::Event e = ValidEvent();
  e.set_summary("bell\x07");
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].summary: "));
}

TEST(PrepareEventsTest, BodyOf64KibIsTheLimit) {
  v1::Event e = ValidEvent();
  e.set_body(std::string(kMaxBodyBytes, 'b'));
  EXPECT_TRUE(PrepareOne(e).ok());
  e.set_body(std::string(kMaxBodyBytes + 1, 'b'));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].body: "));
}

TEST(PrepareEventsTest, BodyMayHoldNewlinesButNotInvalidUtf8) {
  v1::Event e = ValidEvent();
  e.set_body("Hi,\r\n\tthanks for waiting.\nGrüße");
  EXPECT_TRUE(PrepareOne(e).ok());
  e.set_body("broken \xff text");
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].body: "));
  e.set_body("\xed\xa0\x80");
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].body: "));
}

TEST(PrepareEventsTest, SentimentBetweenMinusOneAndOne) {
  for (float ok : {-1.0f, -0.25f, 0.0f, 0.5f, 1.0f}) {
    v1::Event e = ValidEvent();
    e.set_sentiment(ok);
    v1::Event out = PreparedOne(e);
    EXPECT_TRUE(out.has_sentiment()) << ok;
    EXPECT_EQ(out.sentiment(), ok);
  }
  for (float bad : {1.5f, -1.5f, 1.0001f, std::nanf(""), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    v1::Event e = ValidEvent();
    e.set_sentiment(bad);
    EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].sentiment: ")) << bad;
  }
}

TEST(PrepareEventsTest, SentimentStaysAbsentWhenUnset) {
  EXPECT_FALSE(PreparedOne(ValidEvent()).has_sentiment());
}

// ---------------------------------------------------------------------------------------------
// conversation_id, case_id

TEST(PrepareEventsTest, ConversationEndedNeedsAConversationId) {
  v1::Event e = ValidEvent();
  e.set_kind(v1::EVENT_KIND_CONVERSATION_ENDED);
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].conversation_id: "));
  e.set_conversation_id("conv-1");
  EXPECT_TRUE(PrepareOne(e).ok());
}

TEST(PrepareEventsTest, OtherKindsDoNotNeedAConversationId) {
  v1::Event e = ValidEvent();
  e.set_kind(v1::EVENT_KIND_CALL_ENDED);
  EXPECT_TRUE(PrepareOne(e).ok());
}

TEST(PrepareEventsTest, ConversationAndCaseIdsArePrintableTokens) {
  v1::Event e = ValidEvent();
  e.set_conversation_id("conv 1");
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].conversation_id: "));
  e.set_conversation_id(std::string(kMaxRefIdBytes + 1, 'c'));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].conversation_id: "));
  e.set_conversation_id(std::string(kMaxRefIdBytes, 'c'));
  EXPECT_TRUE(PrepareOne(e).ok());

  e.set_case_id("case\n1");
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].case_id: "));
  e.set_case_id(std::string(kMaxRefIdBytes + 1, 'k'));
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].case_id: "));
  e.set_case_id("CASE-0042");
  EXPECT_TRUE(PrepareOne(e).ok());
}

// ---------------------------------------------------------------------------------------------
// attributes

TEST(PrepareEventsTest, SixtyFourAttributesIsTheLimit) {
  v1::Event e = ValidEvent();
  for (int i = 0; i < kMaxEventAttributes; ++i) {
    (*e.mutable_attributes())[absl::StrCat("k", i)] = "v";
  }
  EXPECT_TRUE(PrepareOne(e).ok());
  (*e.mutable_attributes())["one_more"] = "v";
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].attributes: "));
}

TEST(PrepareEventsTest, AttributeKeysAndValuesAreChecked) {
  v1::Event e = ValidEvent();
  (*e.mutable_attributes())[""] = "v";
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].attributes"));

  e = ValidEvent();
  (*e.mutable_attributes())[std::string(kMaxAttributeKeyBytes, 'k')] = "v";
  EXPECT_TRUE(PrepareOne(e).ok());
  (*e.mutable_attributes())[std::string(kMaxAttributeKeyBytes + 1, 'k')] = "v";
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].attributes"));

  e = ValidEvent();
  (*e.mutable_attributes())["multi\nline"] = "v";
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].attributes"));

  e = ValidEvent();
  (*e.mutable_attributes())["page"] = std::string(kMaxAttributeValueBytes, 'v');
  EXPECT_TRUE(PrepareOne(e).ok());
  (*e.mutable_attributes())["page"] = std::string(kMaxAttributeValueBytes + 1, 'v');
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].attributes[page]: "));

  e = ValidEvent();
  (*e.mutable_attributes())["page"] = "\xff";
  EXPECT_THAT(PrepareOne(e), InvalidArgumentStartingWith("events[0].attributes[page]: "));
}

// ---------------------------------------------------------------------------------------------
// Output-only fields

TEST(PrepareEventsTest, OutputOnlyFieldsAreCleared) {
  v1::Event e = ValidEvent();
  e.set_customer_id("cus_somebody_else");
  e.set_cursor("forged-cursor");
  *e.mutable_appended_at() = FromMillis(kNowMs - 1000);
  v1::Event out = PreparedOne(e);
  EXPECT_EQ(out.customer_id(), "");
  EXPECT_EQ(out.cursor(), "");
  EXPECT_FALSE(out.has_appended_at());
}

TEST(PrepareEventsTest, ResultIsExactlyWhatIsStored) {
  v1::Event e = ValidEvent();
  e.set_event_id("ev-1");
  e.set_summary("Asked about order 1234");
  e.set_body("Where is my order?");
  e.set_conversation_id("conv-1");
  e.set_case_id("case-1");
  e.set_sentiment(-0.5f);
  (*e.mutable_attributes())["order"] = "1234";
  *e.mutable_occurred_at() = FromMillis(kNowMs - 5000);
  v1::Event out = PreparedOne(e);
  EXPECT_EQ(out.SerializeAsString(), e.SerializeAsString()) << out.DebugString();
}

}  // namespace
}  // namespace onestory::timeline
