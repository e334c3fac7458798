// The bad-input catalogue of TimelineService.Append, List and Watch: tenants, customer refs,
// events, filters, page tokens, cursors and audiences. Each case is its own tenant;
// bad_input_test.cc runs them all (see bad_input_fixture.h).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {
namespace {

std::vector<BadInputCase> TenantCases() {
  return {
      {.name = "AppendTenant65Chars",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             r.set_tenant(std::string(65, 'a'));
             return api.Append(r);
           }},
      {.name = "ListTenantColon",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             r.set_tenant(absl::StrCat(s.tenant, ":c"));
             return api.List(r);
           }},
      {.name = "WatchTenantSpace",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send =
           [](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             r.set_tenant(absl::StrCat(s.tenant, " x"));
             return api.Watch(r);
           }},
  };
}

std::vector<BadInputCase> CustomerCases() {
  const std::string id65(65, 'c');
  return {
      // No customer_id nor identifier.
      {.name = "AppendCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             r.clear_customer();
             return api.Append(r);
           }},
      {.name = "ListCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             r.clear_customer();
             return api.List(r);
           }},
      {.name = "WatchCustomerRefEmpty",
       .code = kInvalid,
       .message_names = {"customer:"},
       .send =
           [](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             r.clear_customer();
             return api.Watch(r);
           }},
      // Malformed customer ids.
      {.name = "AppendCustomerIdCloseBrace",
       .code = kInvalid,
       .message_names = {"customer.customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             *r.mutable_customer() = RefId(absl::StrCat(s.customer, "}"));
             return api.Append(r);
           }},
      {.name = "AppendCustomerIdEmptyString",
       .code = kInvalid,
       .message_names = {"customer.customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             *r.mutable_customer() = RefId("");
             return api.Append(r);
           }},
      {.name = "ListCustomerIdColon",
       .code = kInvalid,
       .message_names = {"customer.customer_id"},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             *r.mutable_customer() = RefId(absl::StrCat(s.customer, ":p"));
             return api.List(r);
           }},
      {.name = "WatchCustomerId65Chars",
       .code = kInvalid,
       .message_names = {"customer.customer_id"},
       .send =
           [id65](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             *r.mutable_customer() = RefId(id65);
             return api.Watch(r);
           }},
      // Well-formed ids of nobody.
      {.name = "AppendUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             *r.mutable_customer() = RefId(kUnknownCustomer);
             return api.Append(r);
           }},
      {.name = "ListUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             *r.mutable_customer() = RefId(kUnknownCustomer);
             return api.List(r);
           }},
      {.name = "WatchUnknownCustomer",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             *r.mutable_customer() = RefId(kUnknownCustomer);
             return api.Watch(r);
           }},
      {.name = "WatchUnknownCustomerFromStart",
       .code = kNotFound,
       .message_names = {kUnknownCustomer},
       .send =
           [](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             *r.mutable_customer() = RefId(kUnknownCustomer);
             r.set_from_start(true);
             return api.Watch(r);
           }},
      // Identifiers nobody owns, without create_if_missing.
      {.name = "AppendUnownedIdentifierWithoutCreate",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             return api.Append(r);
           }},
      {.name = "ListUnownedIdentifier",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             return api.List(r);
           }},
      {.name = "WatchUnownedIdentifier",
       .code = kNotFound,
       .message_names = {kUnownedPhoneNormalized},
       .send =
           [](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             return api.Watch(r);
           }},
  };
}

std::vector<BadInputCase> IdentifierCases() {
  return {
      {.name = "AppendCreateValueWhitespace",
       .code = kInvalid,
       .message_names = {"customer.identifier.value"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_APP_USER_ID, "   ");
             r.set_create_if_missing(true);
             return api.Append(r);
           }},
      {.name = "AppendCreatePhoneNationalWithoutCountry",
       .code = kInvalid,
       .message_names = {"customer.identifier.value", "default country"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, "(415) 555-0199");
             r.set_create_if_missing(true);
             return api.Append(r);
           }},
  };
}

std::vector<BadInputCase> AppendCases() {
  auto spoiled = [](std::function<void(v1::Event&)> spoil) {
    return [spoil](Api& api, const State& s) { return api.Append(AppendWith(s, spoil)); };
  };
  return {
      {.name = "AppendNoEvents",
       .code = kInvalid,
       .message_names = {"events"},
       .send = [](Api& api, const State& s) { return api.Append(AppendOf(s, 0)); }},
      {.name = "Append501Events",
       .code = kInvalid,
       .message_names = {"events"},
       .send = [](Api& api, const State& s) { return api.Append(AppendOf(s, 501)); }},
      // 70 events of 64 KiB bodies: each valid, 4.4 MiB in all.
      {.name = "AppendOver4MiB",
       .code = kInvalid,
       .message_names = {"events"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s, 70);
             for (v1::Event& e : *r.mutable_events()) e.set_body(std::string(64 * 1024, 'b'));
             return api.Append(r);
           }},
      {.name = "AppendChannelMissing",
       .code = kInvalid,
       .message_names = {"events[0].channel"},
       .send = spoiled([](v1::Event& e) { e.clear_channel(); })},
      {.name = "AppendChannelOutOfRange",
       .code = kInvalid,
       .message_names = {"events[0].channel"},
       .send = spoiled([](v1::Event& e) { e.set_channel(static_cast<v1::Channel>(99)); })},
      {.name = "AppendKindMissing",
       .code = kInvalid,
       .message_names = {"events[0].kind"},
       .send = spoiled([](v1::Event& e) { e.clear_kind(); })},
      {.name = "AppendKindOutOfRange",
       .code = kInvalid,
       .message_names = {"events[0].kind"},
       .send = spoiled([](v1::Event& e) { e.set_kind(static_cast<v1::EventKind>(99)); })},
      {.name = "AppendActorMissing",
       .code = kInvalid,
       .message_names = {"events[0].actor.type"},
       .send = spoiled([](v1::Event& e) { e.clear_actor(); })},
      {.name = "AppendActorTypeOutOfRange",
       .code = kInvalid,
       .message_names = {"events[0].actor.type"},
       .send = spoiled(
           [](v1::Event& e) { e.mutable_actor()->set_type(static_cast<v1::Actor::Type>(9)); })},
      {.name = "AppendAgentWithoutId",
       .code = kInvalid,
       .message_names = {"events[0].actor.id"},
       .send = spoiled([](v1::Event& e) { e.mutable_actor()->set_type(v1::Actor::TYPE_AGENT); })},
      {.name = "AppendEventIdWithSpace",
       .code = kInvalid,
       .message_names = {"events[0].event_id"},
       .send = spoiled([](v1::Event& e) { e.set_event_id("ev 1"); })},
      {.name = "AppendEventIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"events[0].event_id"},
       .send = spoiled([](v1::Event& e) { e.set_event_id(std::string(129, 'e')); })},
      {.name = "AppendDuplicateEventIds",
       .code = kInvalid,
       .message_names = {"events[1].event_id"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s, 2);
             r.mutable_events(1)->set_event_id(r.events(0).event_id());
             return api.Append(r);
           }},
      {.name = "AppendOccurredTwoHoursAhead",
       .code = kInvalid,
       .message_names = {"events[0].occurred_at"},
       .send = spoiled(
           [](v1::Event& e) { *e.mutable_occurred_at() = At(absl::Now() + absl::Hours(2)); })},
      {.name = "AppendOccurredBefore1970",
       .code = kInvalid,
       .message_names = {"events[0].occurred_at"},
       .send = spoiled([](v1::Event& e) { e.mutable_occurred_at()->set_seconds(-86400); })},
      {.name = "AppendSummaryOver1KiB",
       .code = kInvalid,
       .message_names = {"events[0].summary"},
       .send = spoiled([](v1::Event& e) { e.set_summary(std::string(1025, 's')); })},
      {.name = "AppendSummaryControlCharacter",
       .code = kInvalid,
       .message_names = {"events[0].summary"},
       .send = spoiled([](v1::Event& e) { e.set_summary("bell\x07"); })},
      {.name = "AppendBodyOver64KiB",
       .code = kInvalid,
       .message_names = {"events[0].body"},
       .send = spoiled([](v1::Event& e) { e.set_body(std::string(64 * 1024 + 1, 'b')); })},
      {.name = "AppendSentimentTwo",
       .code = kInvalid,
       .message_names = {"events[0].sentiment"},
       .send = spoiled([](v1::Event& e) { e.set_sentiment(2.0f); })},
      {.name = "AppendSentimentNaN",
       .code = kInvalid,
       .message_names = {"events[0].sentiment"},
       .send =
           spoiled([](v1::Event& e) { e.set_sentiment(std::numeric_limits<float>::quiet_NaN()); })},
      {.name = "AppendConversationEndedWithoutId",
       .code = kInvalid,
       .message_names = {"events[0].conversation_id"},
       .send = spoiled([](v1::Event& e) { e.set_kind(v1::EVENT_KIND_CONVERSATION_ENDED); })},
      {.name = "AppendConversationIdWithSpace",
       .code = kInvalid,
       .message_names = {"events[0].conversation_id"},
       .send = spoiled([](v1::Event& e) { e.set_conversation_id("chat 1"); })},
      {.name = "AppendCaseIdOver128Bytes",
       .code = kInvalid,
       .message_names = {"events[0].case_id"},
       .send = spoiled([](v1::Event& e) { e.set_case_id(std::string(129, 'c')); })},
      {.name = "Append65Attributes",
       .code = kInvalid,
       .message_names = {"events[0].attributes"},
       .send = spoiled([](v1::Event& e) {
         for (int i = 0; i < 65; ++i) (*e.mutable_attributes())[absl::StrCat("k", i)] = "v";
       })},
      {.name = "AppendAttributeValueOver4KiB",
       .code = kInvalid,
       .message_names = {"events[0].attributes[page]"},
       .send = spoiled(
           [](v1::Event& e) { (*e.mutable_attributes())["page"] = std::string(4097, 'v'); })},
      {.name = "AppendCreateWithCustomerId",
       .code = kInvalid,
       .message_names = {"create_if_missing"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s);
             r.set_create_if_missing(true);
             return api.Append(r);
           }},
      // All or nothing: events 0, 1, 3 and 4 are valid and none may be stored.
      {.name = "AppendThirdOfFiveBad",
       .code = kInvalid,
       .message_names = {"events[2].channel"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s, 5);
             r.mutable_events(2)->clear_channel();
             return api.Append(r);
           }},
      // A retry of a stored event next to a bad one: nothing is written either.
      {.name = "AppendStoredEventIdWithBadSibling",
       .code = kInvalid,
       .message_names = {"events[1].kind"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s, 2);
             r.mutable_events(0)->set_event_id("ev-1");
             r.mutable_events(1)->clear_kind();
             return api.Append(r);
           }},
      // Events are checked before the identifier is resolved: no customer may be created.
      {.name = "AppendCreateUnownedIdentifierBadEvent",
       .code = kInvalid,
       .message_names = {"events[0].kind"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendWith(s, [](v1::Event& e) { e.clear_kind(); });
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_PHONE, kUnownedPhone);
             r.set_create_if_missing(true);
             return api.Append(r);
           }},
      {.name = "AppendCreateUnownedIdentifierLastEventBad",
       .code = kInvalid,
       .message_names = {"events[3].sentiment"},
       .send =
           [](Api& api, const State& s) {
             v1::AppendRequest r = AppendOf(s, 4);
             r.mutable_events(3)->set_sentiment(-1.5f);
             *r.mutable_customer() = RefIdent(v1::IDENTIFIER_TYPE_CHAT_SESSION, "visitor-1");
             r.set_create_if_missing(true);
             return api.Append(r);
           }},
  };
}

std::vector<BadInputCase> ListCases() {
  auto list = [](std::function<void(v1::ListRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::ListRequest r = ListOf(s);
      spoil(r, s);
      return api.List(r);
    };
  };
  return {
      {.name = "ListPageSizeNegative",
       .code = kInvalid,
       .message_names = {"page_size"},
       .send = list([](v1::ListRequest& r, const State&) { r.set_page_size(-1); })},
      {.name = "ListPageSize501",
       .code = kInvalid,
       .message_names = {"page_size"},
       .send = list([](v1::ListRequest& r, const State&) { r.set_page_size(501); })},
      {.name = "ListOrderOutOfRange",
       .code = kInvalid,
       .message_names = {"order"},
       .send =
           list([](v1::ListRequest& r, const State&) { r.set_order(static_cast<v1::Order>(5)); })},
      {.name = "ListChannelFilterOutOfRange",
       .code = kInvalid,
       .message_names = {"channels"},
       .send = list([](v1::ListRequest& r, const State&) {
         r.add_channels(v1::CHANNEL_SMS);
         r.add_channels(static_cast<v1::Channel>(99));
       })},
      {.name = "ListChannelFilterUnspecified",
       .code = kInvalid,
       .message_names = {"channels"},
       .send =
           list([](v1::ListRequest& r, const State&) { r.add_channels(v1::CHANNEL_UNSPECIFIED); })},
      {.name = "ListKindFilterOutOfRange",
       .code = kInvalid,
       .message_names = {"kinds"},
       .send = list(
           [](v1::ListRequest& r, const State&) { r.add_kinds(static_cast<v1::EventKind>(99)); })},
      {.name = "ListTimeRangeEmpty",
       .code = kInvalid,
       .message_names = {"occurred_before"},
       .send = list([](v1::ListRequest& r, const State&) {
         absl::Time t = absl::Now() - absl::Hours(1);
         *r.mutable_occurred_after() = At(t);
         *r.mutable_occurred_before() = At(t);
       })},
      {.name = "ListTimeRangeReversed",
       .code = kInvalid,
       .message_names = {"occurred_before"},
       .send = list([](v1::ListRequest& r, const State&) {
         *r.mutable_occurred_after() = At(absl::Now());
         *r.mutable_occurred_before() = At(absl::Now() - absl::Hours(1));
       })},
      // The filter's bounds are checked as Append checks occurred_at.
      {.name = "ListOccurredAfterBefore1970",
       .code = kInvalid,
       .message_names = {"occurred_after", "1970"},
       .send = list([](v1::ListRequest& r, const State&) {
         r.mutable_occurred_after()->set_seconds(-86400);
       })},
      {.name = "ListOccurredBeforeAfter9999",
       .code = kInvalid,
       .message_names = {"occurred_before", "9999"},
       .send = list([](v1::ListRequest& r, const State&) {
         r.mutable_occurred_before()->set_seconds(253402300800);
       })},
      {.name = "ListOccurredBeforeInt64Max",
       .code = kInvalid,
       .message_names = {"occurred_before"},
       .send = list([](v1::ListRequest& r, const State&) {
         r.mutable_occurred_before()->set_seconds(std::numeric_limits<int64_t>::max());
       })},
      {.name = "ListOccurredAfterNanosNegative",
       .code = kInvalid,
       .message_names = {"occurred_after"},
       .send = list([](v1::ListRequest& r, const State&) {
         *r.mutable_occurred_after() = At(absl::Now() - absl::Hours(1));
         r.mutable_occurred_after()->set_nanos(-1);
       })},
      {.name = "ListOccurredBeforeNanosOverOneSecond",
       .code = kInvalid,
       .message_names = {"occurred_before"},
       .send = list([](v1::ListRequest& r, const State&) {
         *r.mutable_occurred_before() = At(absl::Now());
         r.mutable_occurred_before()->set_nanos(1000000000);
       })},
      {.name = "ListPageTokenMalformed",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State&) { r.set_page_token("not a token!"); })},
      {.name = "ListPageTokenBase64Garbage",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State&) { r.set_page_token("cDF8eHx5"); })},
      {.name = "ListPageTokenIsCursor",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State& s) { r.set_page_token(s.cursor); })},
      {.name = "ListPageTokenOfAnotherCustomer",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State& s) {
         *r.mutable_customer() = RefId(s.other);
         r.set_page_token(s.page_token);
       })},
      {.name = "ListPageTokenWithOtherFilters",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State& s) {
         r.set_page_token(s.page_token);
         r.add_channels(v1::CHANNEL_WEB_CHAT);
       })},
      {.name = "ListPageTokenWithOtherTimeRange",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State& s) {
         r.set_page_token(s.page_token);
         *r.mutable_occurred_after() = At(absl::Now() - absl::Hours(1));
       })},
      {.name = "ListPageTokenWithOtherOrder",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](v1::ListRequest& r, const State& s) {
         r.set_page_token(s.page_token);
         r.set_order(v1::ORDER_OLDEST_FIRST);
       })},
  };
}

std::vector<BadInputCase> WatchCases() {
  auto watch = [](std::function<void(v1::WatchRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::WatchRequest r = WatchOf(s);
      spoil(r, s);
      return api.Watch(r);
    };
  };
  return {
      {.name = "WatchCursorMalformed",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send = watch([](v1::WatchRequest& r, const State&) { r.set_after_cursor("no cursor!"); })},
      {.name = "WatchCursorBase64Garbage",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send = watch([](v1::WatchRequest& r, const State&) { r.set_after_cursor("YzF8eHx5"); })},
      {.name = "WatchCursorIsPageToken",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send =
           watch([](v1::WatchRequest& r, const State& s) { r.set_after_cursor(s.page_token); })},
      {.name = "WatchCursorOfAnotherCustomer",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send = watch([](v1::WatchRequest& r, const State& s) {
         *r.mutable_customer() = RefId(s.other);
         r.set_after_cursor(s.cursor);
       })},
      {.name = "WatchFromStartWithCursor",
       .code = kInvalid,
       .message_names = {"from_start"},
       .send = watch([](v1::WatchRequest& r, const State& s) {
         r.set_after_cursor(s.cursor);
         r.set_from_start(true);
       })},
  };
}

std::vector<BadInputCase> AudienceCases() {
  return {
      {.name = "ListAudienceOutOfRange",
       .code = kInvalid,
       .message_names = {"audience"},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             r.set_audience(static_cast<v1::Audience>(99));
             return api.List(r);
           }},
      // The page token was issued to the default (AGENT) audience: CUSTOMER sees fewer events.
      {.name = "ListPageTokenWithOtherAudience",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send =
           [](Api& api, const State& s) {
             v1::ListRequest r = ListOf(s);
             r.set_page_token(s.page_token);
             r.set_audience(v1::AUDIENCE_CUSTOMER);
             return api.List(r);
           }},
      {.name = "WatchAudienceOutOfRange",
       .code = kInvalid,
       .message_names = {"audience"},
       .send =
           [](Api& api, const State& s) {
             v1::WatchRequest r = WatchOf(s);
             r.set_audience(static_cast<v1::Audience>(99));
             return api.Watch(r);
           }},
      {.name = "AppendVisibilityOutOfRange",
       .code = kInvalid,
       .message_names = {"events[0].visibility"},
       .send =
           [](Api& api, const State& s) {
             return api.Append(AppendWith(
                 s, [](v1::Event& e) { e.set_visibility(static_cast<v1::Audience>(9)); }));
           }},
  };
}

}  // namespace

std::vector<BadInputCase> TimelineCases() {
  return Concat({TenantCases(), CustomerCases(), IdentifierCases(), AppendCases(), ListCases(),
                 WatchCases(), AudienceCases()});
}

}  // namespace onestory::testing::bad_input
