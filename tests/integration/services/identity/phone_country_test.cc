// Phone numbers in national format over real gRPC against a real redis-server: with a default
// country for the tenant (--default_country), "(415) 555-0100" and "+1 415 555 0100" are one
// customer wherever a phone is read (Resolve, Link, a CustomerRef on Append and GetContext, a
// profile's phone attribute for SuggestMerges); without one, the national form is
// INVALID_ARGUMENT naming the field and nothing is stored.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "libs/identity/phone_countries.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/server_for_test.h"

namespace onestory {
namespace {

using onestory::testing::Id;
using testing::RedisForTest;
using testing::ServerForTest;

constexpr v1::IdentifierType kPhone = v1::IDENTIFIER_TYPE_PHONE;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return ctx;
}

v1::CustomerRef Ref(v1::IdentifierType type, const std::string& value) {
  v1::CustomerRef ref;
  *ref.mutable_identifier() = Id(type, value);
  return ref;
}

v1::Event Ev(const std::string& id) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_VOICE);
  e.set_kind(v1::EVENT_KIND_CALL_STARTED);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  return e;
}

class PhoneCountryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new RedisForTest();
    server_ = new ServerForTest(*redis_, [](service::ServerOptions* o) {
      o->default_countries = *identity::DefaultCountries::Parse("acme=US;euro=GB");
    });
  }
  static void TearDownTestSuite() {
    delete server_;
    delete redis_;
  }
  void SetUp() override { redis_->FlushAll(); }

  grpc::Status Resolve(const std::string& tenant, v1::IdentifierType type, const std::string& value,
                       bool create, v1::ResolveResponse* out) {
    v1::ResolveRequest req;
    req.set_tenant(tenant);
    *req.mutable_identifier() = Id(type, value);
    req.set_create_if_missing(create);
    return server_->identity()->Resolve(Ctx().get(), req, out);
  }

  std::string Created(const std::string& tenant, v1::IdentifierType type,
                      const std::string& value) {
    v1::ResolveResponse resp;
    grpc::Status st = Resolve(tenant, type, value, true, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.created()) << value;
    return resp.customer_id();
  }

  static RedisForTest* redis_;
  static ServerForTest* server_;
};

RedisForTest* PhoneCountryTest::redis_ = nullptr;
ServerForTest* PhoneCountryTest::server_ = nullptr;

TEST_F(PhoneCountryTest, NationalAndInternationalFormsAreOneCustomerWithADefaultCountry) {
  std::string ann = Created("acme", kPhone, "+1 415 555 0100");
  for (const char* national : {"(415) 555-0100", "415.555.0100", "1 (415) 555-0100"}) {
    SCOPED_TRACE(national);
    v1::ResolveResponse resp;
    grpc::Status st = Resolve("acme", kPhone, national, /*create=*/true, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.customer_id(), ann);
    EXPECT_FALSE(resp.created());
    EXPECT_EQ(resp.identifier().value(), "14155550100");
  }

  // The other way round, in a GB tenant: the national form first.
  std::string bob = Created("euro", kPhone, "020 7946 0958");
  v1::ResolveResponse again;
  ASSERT_TRUE(Resolve("euro", kPhone, "+44 20 7946 0958", false, &again).ok());
  EXPECT_EQ(again.customer_id(), bob);
}

TEST_F(PhoneCountryTest, AppendGetContextAndLinkReadTheNationalFormAlike) {
  std::string ann = Created("acme", kPhone, "+1 415 555 0100");

  v1::AppendRequest append;
  append.set_tenant("acme");
  *append.mutable_customer() = Ref(kPhone, "415-555-0100");
  append.set_create_if_missing(true);
  *append.add_events() = Ev("call-1");
  v1::AppendResponse appended;
  grpc::Status st = server_->timeline()->Append(Ctx().get(), append, &appended);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(appended.customer_id(), ann);

  v1::GetContextRequest context;
  context.set_tenant("acme");
  *context.mutable_customer() = Ref(kPhone, "(415) 555 0100");
  v1::GetContextResponse screen;
  st = server_->context()->GetContext(Ctx().get(), context, &screen);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(screen.profile().customer_id(), ann);
  ASSERT_EQ(screen.recent_events_size(), 1);

  // Another customer cannot link the same phone typed nationally: it is Ann's.
  std::string chat = Created("acme", v1::IDENTIFIER_TYPE_CHAT_SESSION, "s-1");
  v1::LinkRequest link;
  link.set_tenant("acme");
  link.set_customer_id(chat);
  *link.mutable_identifier() = Id(kPhone, "(415) 555-0100");
  v1::LinkResponse linked;
  st = server_->identity()->Link(Ctx().get(), link, &linked);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), ann)) << st.error_message();
}

TEST_F(PhoneCountryTest, SuggestMergesReadsANationalPhoneAttributeWithTheCountry) {
  std::string ann = Created("acme", kPhone, "+1 415 555 0100");
  std::string web = Created("acme", v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  v1::UpdateProfileRequest update;
  update.set_tenant("acme");
  update.set_customer_id(web);
  (*update.mutable_profile()->mutable_attributes())["phone"] = "(415) 555-0100";
  update.mutable_update_mask()->add_paths("attributes.phone");
  v1::UpdateProfileResponse updated;
  grpc::Status st = server_->identity()->UpdateProfile(Ctx().get(), update, &updated);
  ASSERT_TRUE(st.ok()) << st.error_message();

  v1::SuggestMergesRequest suggest;
  suggest.set_tenant("acme");
  suggest.mutable_customer()->set_customer_id(web);
  v1::SuggestMergesResponse suggestions;
  st = server_->identity()->SuggestMerges(Ctx().get(), suggest, &suggestions);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(suggestions.suggestions_size(), 1);
  EXPECT_EQ(suggestions.suggestions(0).customer_id(), ann);
  ASSERT_GE(suggestions.suggestions(0).reasons_size(), 1);
  EXPECT_EQ(suggestions.suggestions(0).reasons(0).code(), "same_phone");
  EXPECT_EQ(suggestions.suggestions(0).reasons(0).detail(), "14155550100");
}

TEST_F(PhoneCountryTest, WithoutADefaultCountryTheNationalFormIsInvalidAndStoresNothing) {
  std::string ann = Created("plain", kPhone, "+1 415 555 0100");
  const std::map<std::string, std::string> before = redis_->Snapshot();
  for (const char* national : {"(415) 555-0100", "020 7946 0958"}) {
    SCOPED_TRACE(national);
    v1::ResolveResponse resp;
    grpc::Status st = Resolve("plain", kPhone, national, /*create=*/true, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_TRUE(absl::StartsWith(st.error_message(), "identifier.value: ")) << st.error_message();

    v1::AppendRequest append;
    append.set_tenant("plain");
    *append.mutable_customer() = Ref(kPhone, national);
    append.set_create_if_missing(true);
    *append.add_events() = Ev("call-1");
    v1::AppendResponse appended;
    st = server_->timeline()->Append(Ctx().get(), append, &appended);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_TRUE(absl::StartsWith(st.error_message(), "customer.identifier.value: "))
        << st.error_message();
  }
  EXPECT_TRUE(redis_->Snapshot() == before) << "a refused national number changed Redis";
  // The international forms work as before.
  v1::ResolveResponse resp;
  ASSERT_TRUE(Resolve("plain", kPhone, "14155550100", false, &resp).ok());
  EXPECT_EQ(resp.customer_id(), ann);
}

}  // namespace
}  // namespace onestory
