// IdentityService merges over real gRPC against a real redis-server: a Watch open on the source
// follows the merge, a trusted verified login merges on its own (and a deny-listed shared
// identifier never does), and a merge suggestion leads to a one-step merge.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "libs/common/time_util.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/server_for_test.h"

namespace onestory {
namespace {

using onestory::testing::Id;

using testing::RedisForTest;
using testing::ServerForTest;

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

v1::Event Ev(const std::string& id) {
  v1::Event e;
  e.set_event_id(id);
  e.set_channel(v1::CHANNEL_MOBILE_APP);
  e.set_kind(v1::EVENT_KIND_APP_VIEW);
  e.mutable_actor()->set_type(v1::Actor::TYPE_CUSTOMER);
  return e;
}

class MergeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<RedisForTest>();
    server_ = std::make_unique<ServerForTest>(*redis_, [](service::ServerOptions* o) {
      o->identity_policy.auto_merge_types["acme"] = {v1::IDENTIFIER_TYPE_APP_USER_ID,
                                                     v1::IDENTIFIER_TYPE_DEVICE_ID};
      o->identity_policy.deny_list = *identity::MergeDenyList::Parse("device_id:kiosk-*");
    });
  }

  std::string Customer(const v1::Identifier& id) {
    v1::ResolveRequest req;
    req.set_tenant("acme");
    *req.mutable_identifier() = id;
    req.set_create_if_missing(true);
    v1::ResolveResponse resp;
    grpc::Status st = server_->identity()->Resolve(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.customer_id();
  }

  grpc::Status Link(const std::string& customer, const v1::Identifier& id,
                    v1::Verification verification, v1::LinkResponse* resp) {
    v1::LinkRequest req;
    req.set_tenant("acme");
    req.set_customer_id(customer);
    *req.mutable_identifier() = id;
    req.set_verification(verification);
    req.set_channel(v1::CHANNEL_MOBILE_APP);
    req.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
    return server_->identity()->Link(Ctx().get(), req, resp);
  }

  v1::AppendResponse Append(v1::CustomerRef ref, v1::Event e) {
    v1::AppendRequest req;
    req.set_tenant("acme");
    *req.mutable_customer() = std::move(ref);
    *req.add_events() = std::move(e);
    v1::AppendResponse resp;
    grpc::Status st = server_->timeline()->Append(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  v1::AppendResponse Append(const std::string& customer, v1::Event e) {
    v1::CustomerRef ref;
    ref.set_customer_id(customer);
    return Append(std::move(ref), std::move(e));
  }

  v1::Profile Profile(const std::string& customer) {
    v1::GetProfileRequest req;
    req.set_tenant("acme");
    req.mutable_customer()->set_customer_id(customer);
    v1::GetProfileResponse resp;
    grpc::Status st = server_->identity()->GetProfile(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.profile();
  }

  std::unique_ptr<RedisForTest> redis_;
  std::unique_ptr<ServerForTest> server_;
};

TEST_F(MergeServiceTest, AWatchOnTheSourceContinuesWithTheTargetsEvents) {
  std::string a = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  std::string b = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  Append(b, Ev("b1"));
  v1::WatchRequest wreq;
  wreq.set_tenant("acme");
  wreq.mutable_customer()->set_customer_id(b);
  auto wctx = Ctx(absl::Seconds(20));
  auto reader = server_->timeline()->Watch(wctx.get(), wreq);
  absl::SleepFor(absl::Seconds(1));  // the watch subscribes, then starts at the head

  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(b);
  mreq.set_target_customer_id(a);
  mreq.set_reason("caller verified both");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  mreq.mutable_actor()->set_id("agent-7");
  v1::MergeResponse mresp;
  grpc::Status st = server_->identity()->Merge(Ctx().get(), mreq, &mresp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  Append(a, Ev("on-target"));
  v1::CustomerRef email;
  *email.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com");
  Append(email, Ev("via-source-email"));
  v1::WatchResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.event().event_id(), "on-target");
  EXPECT_EQ(msg.event().customer_id(), a);
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.event().event_id(), "via-source-email");
  wctx->TryCancel();

  v1::GetMergeHistoryRequest hreq;
  hreq.set_tenant("acme");
  hreq.set_customer_id(b);
  v1::GetMergeHistoryResponse hresp;
  ASSERT_TRUE(server_->identity()->GetMergeHistory(Ctx().get(), hreq, &hresp).ok());
  ASSERT_EQ(hresp.merges_size(), 1);
  EXPECT_EQ(hresp.merges(0).actor().id(), "agent-7");
  EXPECT_EQ(hresp.merges(0).state(), v1::MergeRecord::STATE_MERGED);
}

TEST_F(MergeServiceTest, AnUnmergeEndsAWatchThatFollowedTheMerge) {
  std::string a = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  std::string b = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(b);
  mreq.set_target_customer_id(a);
  mreq.set_reason("looked alike");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
  v1::MergeResponse mresp;
  ASSERT_TRUE(server_->identity()->Merge(Ctx().get(), mreq, &mresp).ok());

  // An agent serving b watches through b's id: that is a's timeline now.
  v1::WatchRequest wreq;
  wreq.set_tenant("acme");
  wreq.mutable_customer()->set_customer_id(b);
  wreq.set_from_start(true);
  auto wctx = Ctx(absl::Seconds(20));
  auto reader = server_->timeline()->Watch(wctx.get(), wreq);
  Append(a, Ev("a-1"));
  v1::WatchResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.event().event_id(), "a-1");

  // They were two people after all: the watch must not go on showing a's events.
  v1::UnmergeRequest ureq;
  ureq.set_tenant("acme");
  ureq.set_merge_id(mresp.merge().merge_id());
  ureq.set_reason("different people");
  ureq.mutable_actor()->set_type(v1::Actor::TYPE_SYSTEM);
  v1::UnmergeResponse uresp;
  ASSERT_TRUE(server_->identity()->Unmerge(Ctx().get(), ureq, &uresp).ok());
  Append(a, Ev("a-2"));
  while (reader->Read(&msg)) EXPECT_NE(msg.event().event_id(), "a-2");
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << st.error_message();
}

TEST_F(MergeServiceTest, ATrustedVerifiedLoginMergesOnItsOwn) {
  std::string member = Customer(Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"));
  std::string visitor = Customer(Id(v1::IDENTIFIER_TYPE_CHAT_SESSION, "chat-9"));
  Append(visitor, Ev("asked-the-bot"));

  // Typed into chat: not proof enough.
  v1::LinkResponse resp;
  grpc::Status st =
      Link(visitor, Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"), v1::VERIFICATION_ASSERTED, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(st.error_message(), member)) << st.error_message();
  EXPECT_EQ(Profile(visitor).customer_id(), visitor);

  // The visitor logs in: one person.
  st = Link(visitor, Id(v1::IDENTIFIER_TYPE_APP_USER_ID, "u-1"), v1::VERIFICATION_AUTHENTICATED,
            &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(resp.merge().automatic());
  EXPECT_EQ(resp.merge().source_customer_id(), visitor);
  EXPECT_EQ(resp.merge().target_customer_id(), member);
  v1::Profile p = Profile(visitor);
  EXPECT_EQ(p.customer_id(), member);
  for (const auto& li : p.identifiers()) {
    if (li.identifier().type() == v1::IDENTIFIER_TYPE_APP_USER_ID) {
      EXPECT_EQ(li.evidence().verification(), v1::VERIFICATION_AUTHENTICATED);
    }
  }
  EXPECT_EQ(p.identifiers_size(), 2);
}

TEST_F(MergeServiceTest, ASharedKioskDeviceNeverMerges) {
  std::string a = Customer(Id(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-7"));
  std::string b = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  v1::LinkResponse resp;
  grpc::Status st =
      Link(b, Id(v1::IDENTIFIER_TYPE_DEVICE_ID, "kiosk-7"), v1::VERIFICATION_AUTHENTICATED, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(resp.has_merge());
  EXPECT_EQ(Profile(b).customer_id(), b);
  EXPECT_EQ(Profile(a).customer_id(), a);
}

TEST_F(MergeServiceTest, ASuggestionLeadsToAOneStepMerge) {
  std::string known = Customer(Id(v1::IDENTIFIER_TYPE_EMAIL, "ann@example.com"));
  std::string caller = Customer(Id(v1::IDENTIFIER_TYPE_PHONE, "14155550100"));
  v1::UpdateProfileRequest ureq;
  ureq.set_tenant("acme");
  ureq.set_customer_id(caller);
  (*ureq.mutable_profile()->mutable_attributes())["email"] = "Ann@Example.com";
  ureq.mutable_update_mask()->add_paths("attributes.email");
  v1::UpdateProfileResponse uresp;
  ASSERT_TRUE(server_->identity()->UpdateProfile(Ctx().get(), ureq, &uresp).ok());

  v1::SuggestMergesRequest sreq;
  sreq.set_tenant("acme");
  sreq.mutable_customer()->set_customer_id(caller);
  v1::SuggestMergesResponse sresp;
  grpc::Status st = server_->identity()->SuggestMerges(Ctx().get(), sreq, &sresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(sresp.suggestions_size(), 1);
  EXPECT_EQ(sresp.suggestions(0).customer_id(), known);
  ASSERT_GE(sresp.suggestions(0).reasons_size(), 1);
  EXPECT_EQ(sresp.suggestions(0).reasons(0).code(), "same_email");
  EXPECT_EQ(sresp.suggestions(0).reasons(0).detail(), "ann@example.com");

  v1::MergeRequest mreq;
  mreq.set_tenant("acme");
  mreq.set_source_customer_id(sresp.suggestions(0).customer_id());
  mreq.set_target_customer_id(caller);
  mreq.set_reason("suggested: same_email");
  mreq.mutable_actor()->set_type(v1::Actor::TYPE_AGENT);
  mreq.mutable_actor()->set_id("agent-1");
  v1::MergeResponse mresp;
  ASSERT_TRUE(server_->identity()->Merge(Ctx().get(), mreq, &mresp).ok());
  // Once merged, it is no longer suggested.
  sresp.Clear();
  ASSERT_TRUE(server_->identity()->SuggestMerges(Ctx().get(), sreq, &sresp).ok());
  EXPECT_EQ(sresp.suggestions_size(), 0);
}

}  // namespace
}  // namespace onestory
