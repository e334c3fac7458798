#include "libs/timeline/stream_entry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/common/time_util.h"
#include "libs/timeline/cursor.h"

namespace onestory::timeline {
namespace {

using redis::Reply;

Reply Str(const std::string& s) {
  Reply r;
  r.type = Reply::Type::kString;
  r.str = s;
  return r;
}

Reply Array(std::vector<Reply> elements) {
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements = std::move(elements);
  return r;
}

// An XRANGE item: [id, [field, value, ...]].
Reply Item(const std::string& id, const std::vector<std::string>& fields) {
  std::vector<Reply> f;
  for (const std::string& s : fields) f.push_back(Str(s));
  return Array({Str(id), Array(std::move(f))});
}

std::string Blob(const std::string& event_id) {
  v1::Event e;
  e.set_event_id(event_id);
  e.set_summary("order 1234 late");
  return e.SerializeAsString();
}

TEST(StreamEntryTest, ReadsEveryField) {
  absl::StatusOr<StreamEntry> s =
      ParseStreamEntry(Item("1700000000123-4", {"e", Blob("ev-1"), "m", "mrg_1,mrg_2", "a", "42"}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->id, "1700000000123-4");
  EXPECT_EQ(s->blob, Blob("ev-1"));
  EXPECT_EQ(s->tag, "mrg_1,mrg_2");
  EXPECT_EQ(s->appended, "42");
  EXPECT_EQ(s->StoredAtMs(), 42);
}

TEST(StreamEntryTest, AnEntryAppendedHereIsStoredAtItsStreamIdsTime) {
  absl::StatusOr<StreamEntry> s = ParseStreamEntry(Item("1700000000123-4", {"e", Blob("ev-1")}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tag, "");
  EXPECT_EQ(s->appended, "");
  EXPECT_EQ(s->StoredAtMs(), 1700000000123);
}

TEST(StreamEntryTest, UnknownFieldsAreIgnored) {
  absl::StatusOr<StreamEntry> s =
      ParseStreamEntry(Item("5-0", {"x", "later", "e", Blob("ev-1"), "dangling"}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->blob, Blob("ev-1"));
  EXPECT_EQ(s->StoredAtMs(), 5);
}

TEST(StreamEntryTest, IdAndFieldsGivenApart) {
  Reply item = Item("7-1", {"e", Blob("ev-2"), "a", "3"});
  absl::StatusOr<StreamEntry> s = ParseStreamEntry(item.elements[0], item.elements[1]);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->id, "7-1");
  EXPECT_EQ(s->blob, Blob("ev-2"));
  EXPECT_EQ(s->StoredAtMs(), 3);
}

// Replies that are not an XRANGE item.
std::vector<Reply> MalformedItems() {
  return {
      Reply(),  // nil
      Str("1-0"),
      Array({Str("1-0")}),
      Array({Str("1-0"), Str("e")}),
      Array({Array({}), Array({})}),
      Array({Str("1-0"), Array({}), Str("extra")}),
  };
}

TEST(StreamEntryTest, MalformedItemsAreInternal) {
  std::vector<Reply> bad = MalformedItems();
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(ParseStreamEntry(bad[i]).status().code(), absl::StatusCode::kInternal) << i;
  }
}

// `r` as Redis sends it (a nil as a nil bulk string).
std::string Resp(const Reply& r) {
  switch (r.type) {
    case Reply::Type::kString:
      return absl::StrCat("$", r.str.size(), "\r\n", r.str, "\r\n");
    case Reply::Type::kArray: {
      std::string out = absl::StrCat("*", r.elements.size(), "\r\n");
      for (const Reply& e : r.elements) out += Resp(e);
      return out;
    }
    default:
      return "$-1\r\n";
  }
}

TEST(StreamEntryTest, AnItemReadInPlaceFromItsBytesReadsAsItsReply) {
  std::vector<Reply> items = MalformedItems();
  items.push_back(Item("1700000000123-4", {"e", Blob("ev-1"), "m", "mrg_1,mrg_2", "a", "42"}));
  items.push_back(Item("5-0", {"x", "later", "e", Blob("ev-1"), "dangling"}));
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StatusOr<redis::RespView> view = redis::RespView::Parse(Resp(items[i]));
    ASSERT_TRUE(view.ok()) << view.status();
    absl::StatusOr<StreamEntryView> in_place = ParseStreamEntryView(view->root());
    absl::StatusOr<StreamEntryView> from_reply = ParseStreamEntryView(items[i]);
    ASSERT_EQ(in_place.status(), from_reply.status()) << i;
    if (!in_place.ok()) continue;
    EXPECT_EQ(in_place->id, from_reply->id) << i;
    EXPECT_EQ(in_place->blob, from_reply->blob) << i;
    EXPECT_EQ(in_place->tag, from_reply->tag) << i;
    EXPECT_EQ(in_place->appended, from_reply->appended) << i;
  }
}

TEST(StreamEntryTest, EventCarriesItsOutputFields) {
  absl::StatusOr<StreamEntry> s = ParseStreamEntry(Item("1700000000123-4", {"e", Blob("ev-1")}));
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<v1::Event> e = s->Event("cus_1");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event_id(), "ev-1");
  EXPECT_EQ(e->summary(), "order 1234 late");
  EXPECT_EQ(e->customer_id(), "cus_1");
  EXPECT_EQ(e->cursor(), EncodeCursor("cus_1", "1700000000123-4"));
  EXPECT_EQ(ToMillis(e->appended_at()), 1700000000123);

  s->appended = "1600000000000";  // renumbered by a merge: first stored earlier
  e = s->Event("cus_1");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(ToMillis(e->appended_at()), 1600000000000);
}

TEST(StreamEntryTest, EventFromEntryDecodesAnXrangeItem) {
  absl::StatusOr<v1::Event> e = EventFromEntry("cus_9", Item("9-0", {"e", Blob("ev-9")}));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event_id(), "ev-9");
  EXPECT_EQ(e->cursor(), EncodeCursor("cus_9", "9-0"));
  EXPECT_EQ(EventFromEntry("cus_9", Array({})).status().code(), absl::StatusCode::kInternal);
}

TEST(StreamEntryTest, AnUndecodableEventIsInternal) {
  absl::StatusOr<StreamEntry> s = ParseStreamEntry(Item("1-0", {"e", std::string("\xff\xff", 2)}));
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<v1::Event> e = s->Event("cus_1");
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(e.status().message().find("1-0"), std::string::npos) << e.status();
}

// A full event: every kind of field, the visibility among them.
v1::Event FullEvent() {
  v1::Event e;
  e.set_event_id("ev-7");
  e.set_channel(v1::CHANNEL_VOICE);
  e.set_kind(v1::EVENT_KIND_MESSAGE);
  e.mutable_occurred_at()->set_seconds(1700000000);
  e.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  e.mutable_actor()->set_id("agent-1");
  e.set_summary("refund promised");
  e.set_body(std::string(300, 'b'));
  e.set_sentiment(-0.5f);
  e.set_conversation_id("call-1");
  (*e.mutable_attributes())["queue"] = "billing";
  e.set_visibility(v1::AUDIENCE_SUPERVISOR);
  e.mutable_redacted_at()->set_seconds(1700000500);
  return e;
}

TEST(StreamEntryTest, VisibilityIsReadWithoutDecoding) {
  StreamEntry s{"1-0", FullEvent().SerializeAsString()};
  absl::StatusOr<v1::Audience> v = s.Visibility();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, v1::AUDIENCE_SUPERVISOR);

  s.blob = Blob("ev-1");  // none stored: UNSPECIFIED, as Event() would read it
  ASSERT_TRUE(s.Visibility().ok());
  EXPECT_EQ(*s.Visibility(), v1::AUDIENCE_UNSPECIFIED);
  s.blob = "";
  EXPECT_EQ(*s.Visibility(), v1::AUDIENCE_UNSPECIFIED);

  v1::Event later;  // a field given twice: the last wins, as when parsing
  later.set_visibility(v1::AUDIENCE_CUSTOMER);
  s.blob = FullEvent().SerializeAsString() + later.SerializeAsString();
  EXPECT_EQ(*s.Visibility(), v1::AUDIENCE_CUSTOMER);
}

TEST(StreamEntryTest, AnUndecodableVisibilityIsInternal) {
  std::string full = FullEvent().SerializeAsString();
  for (const std::string& blob : {std::string("\xff\xff", 2), full.substr(0, full.size() - 3),
                                  std::string("\x0c"),                    // an end-group tag alone
                                  full + std::string("\x62\x10x", 3)}) {  // a length past the end
    StreamEntry s{"3-0", blob};
    absl::StatusOr<v1::Audience> v = s.Visibility();
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal) << absl::CEscape(blob);
    EXPECT_NE(v.status().message().find("3-0"), std::string::npos) << v.status();
  }
}

TEST(StreamEntryTest, SerializedEventParsesAsTheDecodedOne) {
  for (const std::string& appended : {std::string(), std::string("1600000000000")}) {
    StreamEntry s{"1700000000123-4", FullEvent().SerializeAsString(), "", appended};
    absl::StatusOr<v1::Event> decoded = s.Event("cus_1");
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    std::string out = "prefix";
    s.AppendSerializedEvent("cus_1", &out);
    ASSERT_EQ(out.substr(0, 6), "prefix");
    v1::Event parsed;
    ASSERT_TRUE(parsed.ParseFromString(out.substr(6)));
    EXPECT_EQ(parsed.SerializeAsString(), decoded->SerializeAsString())
        << parsed.DebugString() << " vs " << decoded->DebugString();
  }
}

// The output fields are written by hand: the bytes are the ones protobuf writes for an Event
// holding them (zero values left out, a Timestamp before 1970 counted as protobuf counts it).
TEST(StreamEntryTest, SerializedEventIsTheBlobThenTheOutputFieldsAsProtobufWritesThem) {
  struct Case {
    std::string customer_id;
    std::string id;
    std::string appended;
  };
  for (const Case& c : std::vector<Case>{{"cus_1", "1700000000123-4", ""},
                                         {"cus_1", "1700000000000-0", ""},  // no nanos
                                         {"cus_1", "0-1", ""},              // no seconds either
                                         {"", "5-0", ""},                   // no customer id
                                         {"cus_1", "1-0", "-1500"},         // before 1970
                                         {std::string(300, 'c'), "9-9", "1600000000999"}}) {
    StreamEntry s{c.id, FullEvent().SerializeAsString(), "", c.appended};
    v1::Event output;
    output.set_customer_id(c.customer_id);
    output.set_cursor(EncodeCursor(c.customer_id, c.id));
    *output.mutable_appended_at() = FromMillis(s.StoredAtMs());
    std::string out = "prefix";
    s.AppendSerializedEvent(c.customer_id, &out);
    EXPECT_EQ(absl::CEscape(out), absl::CEscape("prefix" + s.blob + output.SerializeAsString()))
        << c.id << " " << c.appended;
  }
}

// What an append publishes: the entry of a single-event append, or nothing to send as is.
TEST(PublishedEntryTest, ReadsTheEntryOfASingleEventAppend) {
  v1::Event stored = FullEvent();
  stored.set_body("two\nlines");  // a blob may hold any byte, a newline too
  std::string blob = stored.SerializeAsString();
  std::string message = "1700000000000-3\n" + blob;
  std::optional<StreamEntryView> entry = PublishedEntry(message);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->id, "1700000000000-3");
  EXPECT_EQ(entry->blob, blob);
  EXPECT_TRUE(entry->tag.empty());
  EXPECT_TRUE(entry->appended.empty());
  absl::StatusOr<v1::Event> event = entry->Event("cus_1");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->body(), "two\nlines");
  EXPECT_EQ(event->cursor(), EncodeCursor("cus_1", "1700000000000-3"));
}

TEST(PublishedEntryTest, OtherMessagesCarryNoEntry) {
  for (absl::string_view message :
       {"", "1700000000000-3", "merged", "unmerged", "erased", "\nblob", "x-1\nblob", "1-\nb"}) {
    EXPECT_FALSE(PublishedEntry(message).has_value()) << absl::CEscape(message);
  }
  // An empty blob is an entry (an event with every field at its default).
  std::optional<StreamEntryView> empty = PublishedEntry("5-0\n");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->blob.empty());
}

}  // namespace
}  // namespace onestory::timeline
