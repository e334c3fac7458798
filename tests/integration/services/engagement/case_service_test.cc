// CaseService over real gRPC against a real redis-server: OpenCase is idempotent by case_id and
// follows the tenant's journey, UpdateCase keeps every reassignment with its reason and refuses
// a promise in the past, ResolveCase twice is a duplicate and a resolved case cannot change,
// SetJourney validates its stages and keeps those open cases are in, and GetJourneyStats counts
// open cases, entries, repeat contacts, channel switches and times in stage. Every result is also
// read back through GetCase, GetContext or the timeline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/services/engagement/engagement_fixture.h"

namespace onestory::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CaseServiceTest : public EngagementFixture {
 protected:
  const v1::StageStats* Stage(const v1::GetJourneyStatsResponse& stats, const std::string& name) {
    for (const auto& s : stats.stages()) {
      if (s.stage() == name) return &s;
    }
    ADD_FAILURE() << "no stats for stage " << name << ": " << stats.DebugString();
    return nullptr;
  }
};

TEST_F(CaseServiceTest, OpenCaseIsIdempotentByCaseId) {
  std::string c = NewCustomer();
  v1::OpenCaseRequest req = OpenReq(c, "case-1", "order 1234 not delivered");
  *req.mutable_owner() = Agent("agent-1");
  v1::OpenCaseResponse first = OpenCaseOk(req);
  EXPECT_FALSE(first.already_open());
  const v1::Case& k = first.case_();
  EXPECT_EQ(k.case_id(), "case-1");
  EXPECT_EQ(k.customer_id(), c);
  EXPECT_EQ(k.topic(), "order 1234 not delivered");
  EXPECT_EQ(k.state(), v1::CASE_STATE_OPEN);
  EXPECT_TRUE(k.stage().empty());  // the tenant has no journey
  EXPECT_TRUE(SameActor(k.owner(), Agent("agent-1")));
  EXPECT_TRUE(k.has_opened_at());
  EXPECT_EQ(k.contacts(), 1);  // OpenCase counts as the case's first contact
  EXPECT_EQ(k.repeat_contacts(), 0);
  EXPECT_EQ(k.last_channel(), v1::CHANNEL_WEB_CHAT);
  EXPECT_EQ(first.event().kind(), v1::EVENT_KIND_CASE_OPENED);
  EXPECT_EQ(first.event().case_id(), "case-1");

  auto before = TenantSnapshot();
  req.set_topic("a different topic");
  v1::OpenCaseResponse retry = OpenCaseOk(req);
  EXPECT_TRUE(retry.already_open());
  EXPECT_EQ(retry.case_().topic(), "order 1234 not delivered");
  EXPECT_EQ(ToMillis(retry.case_().opened_at()), ToMillis(k.opened_at()));
  EXPECT_EQ(TenantSnapshot(), before) << "a retried OpenCase wrote something";

  v1::Case read = GetCaseOk(c, "case-1");
  EXPECT_EQ(read.topic(), "order 1234 not delivered");
  EXPECT_EQ(read.contacts(), 1);
  std::vector<v1::Event> events = Timeline(c);
  ASSERT_EQ(CountKind(events, v1::EVENT_KIND_CASE_OPENED), 1);
  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).case_id(), "case-1");
  EXPECT_TRUE(SameActor(ctx.open_cases(0).owner(), Agent("agent-1")));
}

TEST_F(CaseServiceTest, OpenCaseRefusesBadRequests) {
  std::string c = NewCustomer();
  auto before = TenantSnapshot();
  v1::OpenCaseResponse resp;
  v1::OpenCaseRequest no_topic = OpenReq(c, "case-1", "");
  grpc::Status st = OpenCase(no_topic, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("topic"));
  v1::OpenCaseRequest no_actor = OpenReq(c, "case-1", "refund");
  no_actor.clear_actor();
  st = OpenCase(no_actor, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("actor"));
  v1::OpenCaseRequest no_channel = OpenReq(c, "case-1", "refund", v1::CHANNEL_UNSPECIFIED);
  st = OpenCase(no_channel, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("channel"));
  st = OpenCase(OpenReq("cus_nobody", "case-1", "refund"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  // A stage while the tenant has no journey.
  v1::OpenCaseRequest staged = OpenReq(c, "case-1", "refund");
  staged.set_stage("shipped");
  st = OpenCase(staged, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before) << "a refused OpenCase wrote something";
  v1::Case none;
  st = GetCase(c, "case-1", &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
}

TEST_F(CaseServiceTest, OpenCaseStagesFollowTheJourney) {
  EXPECT_TRUE(JourneyStages().empty());
  v1::Journey set;
  grpc::Status st = SetJourney({"ordered", "shipped", "delivered"}, &set);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_THAT(set.stages(), ElementsAre("ordered", "shipped", "delivered"));
  EXPECT_THAT(JourneyStages(), ElementsAre("ordered", "shipped", "delivered"));

  std::string c = NewCustomer();
  v1::OpenCaseResponse first_stage = OpenCaseOk(OpenReq(c, "case-1", "where is it"));
  EXPECT_EQ(first_stage.case_().stage(), "ordered");
  EXPECT_TRUE(first_stage.case_().has_stage_entered_at());
  v1::OpenCaseRequest shipped = OpenReq(c, "case-2", "late");
  shipped.set_stage("shipped");
  EXPECT_EQ(OpenCaseOk(shipped).case_().stage(), "shipped");

  auto before = TenantSnapshot();
  v1::OpenCaseRequest lost = OpenReq(c, "case-3", "lost");
  lost.set_stage("lost");
  v1::OpenCaseResponse resp;
  st = OpenCase(lost, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("stage"));
  EXPECT_EQ(TenantSnapshot(), before);

  EXPECT_EQ(GetCaseOk(c, "case-1").stage(), "ordered");
  EXPECT_EQ(GetCaseOk(c, "case-2").stage(), "shipped");
  EXPECT_EQ(ContextOk(c).open_cases_size(), 2);
}

TEST_F(CaseServiceTest, SetJourneyValidatesItsStages) {
  std::vector<std::vector<std::string>> bad = {
      {}, {"Ordered"}, {"ordered", "ordered"}, {"has space"}, {""}, {std::string(65, 'a')},
  };
  std::vector<std::string> too_many;
  for (int i = 0; i < 33; ++i) too_many.push_back(absl::StrCat("s", i));
  bad.push_back(too_many);
  for (const auto& stages : bad) {
    grpc::Status st = SetJourney(stages);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << stages.size() << " stages: " << Describe(st);
  }
  EXPECT_TRUE(JourneyStages().empty());
  std::vector<std::string> most(too_many.begin(), too_many.begin() + 32);
  most[0] = std::string(64, 'a');
  most[1] = "return_requested";
  most[2] = "step-2";
  grpc::Status st = SetJourney(most);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(JourneyStages(), most);
}

TEST_F(CaseServiceTest, AStageWithOpenCasesCannotBeRemoved) {
  ASSERT_TRUE(SetJourney({"ordered", "shipped", "delivered"}).ok());
  std::string c = NewCustomer();
  v1::OpenCaseRequest req = OpenReq(c, "case-1", "late");
  req.set_stage("shipped");
  OpenCaseOk(req);

  auto before = TenantSnapshot();
  grpc::Status st = SetJourney({"ordered", "delivered"});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("shipped"));
  EXPECT_EQ(TenantSnapshot(), before);
  EXPECT_THAT(JourneyStages(), ElementsAre("ordered", "shipped", "delivered"));

  // Stages without open cases may go, and new ones may come.
  st = SetJourney({"ordered", "shipped", "refunded"});
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_THAT(JourneyStages(), ElementsAre("ordered", "shipped", "refunded"));
  ResolveCaseOk(ResolveReq(c, "case-1"));
  ASSERT_TRUE(redis_->AwaitOutboxesDrained());  // the open-case index follows the outbox
  st = SetJourney({"ordered", "refunded"});
  ASSERT_TRUE(st.ok()) << "no open case in shipped any more: " << Describe(st);
  EXPECT_THAT(JourneyStages(), ElementsAre("ordered", "refunded"));
}

TEST_F(CaseServiceTest, AReassignmentNeedsAReasonAndIsKept) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));  // nobody owns it yet

  v1::UpdateCaseRequest take = UpdateReq(c, "case-1");
  *take.mutable_actor() = Agent("agent-1");
  *take.mutable_owner() = Agent("agent-1");
  v1::UpdateCaseResponse taken = UpdateCaseOk(take);  // the first owner needs no reason
  EXPECT_TRUE(SameActor(taken.case_().owner(), Agent("agent-1")));
  EXPECT_EQ(taken.event().kind(), v1::EVENT_KIND_CASE_UPDATE);

  auto before = TenantSnapshot();
  v1::UpdateCaseRequest pass = UpdateReq(c, "case-1");
  *pass.mutable_actor() = Agent("supervisor-9");
  *pass.mutable_owner() = Agent("agent-2");
  v1::UpdateCaseResponse resp;
  grpc::Status st = UpdateCase(pass, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("reassign_reason"));
  EXPECT_EQ(TenantSnapshot(), before);
  EXPECT_TRUE(SameActor(GetCaseOk(c, "case-1").owner(), Agent("agent-1")));

  pass.set_reassign_reason("agent-1's shift ended");
  v1::UpdateCaseResponse passed = UpdateCaseOk(pass);
  EXPECT_TRUE(SameActor(passed.case_().owner(), Agent("agent-2")));

  v1::Case k = GetCaseOk(c, "case-1");
  EXPECT_TRUE(SameActor(k.owner(), Agent("agent-2")));
  EXPECT_EQ(k.owner_changes(), 2);
  ASSERT_EQ(k.owner_history_size(), 2) << k.DebugString();
  const v1::OwnerChange& first = k.owner_history(0);
  EXPECT_FALSE(first.has_from());
  EXPECT_TRUE(SameActor(first.to(), Agent("agent-1")));
  EXPECT_TRUE(SameActor(first.by(), Agent("agent-1")));
  const v1::OwnerChange& second = k.owner_history(1);
  EXPECT_TRUE(SameActor(second.from(), Agent("agent-1")));
  EXPECT_TRUE(SameActor(second.to(), Agent("agent-2")));
  EXPECT_EQ(second.reason(), "agent-1's shift ended");
  EXPECT_TRUE(SameActor(second.by(), Agent("supervisor-9")));
  EXPECT_TRUE(second.has_at());
  EXPECT_GE(ToMillis(second.at()), ToMillis(first.at()));

  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_TRUE(SameActor(ctx.open_cases(0).owner(), Agent("agent-2")));
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_CASE_UPDATE), 2);
}

TEST_F(CaseServiceTest, OwnerHistoryKeepsTheLatest50AndCountsThemAll) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  for (int i = 1; i <= 52; ++i) {
    v1::UpdateCaseRequest req = UpdateReq(c, "case-1");
    *req.mutable_owner() = Agent(absl::StrCat("agent-", i));
    if (i > 1) req.set_reassign_reason(absl::StrCat("handover ", i));
    UpdateCaseOk(req);
    if (HasFailure()) return;
  }
  v1::Case k = GetCaseOk(c, "case-1");
  EXPECT_EQ(k.owner_changes(), 52);
  ASSERT_EQ(k.owner_history_size(), 50);
  // Oldest first: the first two changes fell off.
  EXPECT_TRUE(SameActor(k.owner_history(0).from(), Agent("agent-2")));
  EXPECT_TRUE(SameActor(k.owner_history(0).to(), Agent("agent-3")));
  EXPECT_EQ(k.owner_history(0).reason(), "handover 3");
  EXPECT_TRUE(SameActor(k.owner_history(49).to(), Agent("agent-52")));
  EXPECT_TRUE(SameActor(k.owner(), Agent("agent-52")));
}

TEST_F(CaseServiceTest, UpdateCaseKeepsThePromiseAndNoteAndRefusesBadChanges) {
  ASSERT_TRUE(SetJourney({"ordered", "shipped"}).ok());
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));

  v1::UpdateCaseRequest promise = UpdateReq(c, "case-1");
  *promise.mutable_actor() = Agent("agent-7");
  promise.set_promise("refund by Friday");
  *promise.mutable_promised_by() = FromNow(absl::Hours(72));
  promise.set_note("customer was polite but tired");
  v1::UpdateCaseResponse updated = UpdateCaseOk(promise);
  EXPECT_EQ(updated.case_().promise().text(), "refund by Friday");
  EXPECT_EQ(ToMillis(updated.case_().promise().promised_by()), ToMillis(promise.promised_by()));
  EXPECT_TRUE(SameActor(updated.case_().promise().made_by(), Agent("agent-7")));
  EXPECT_TRUE(updated.case_().promise().has_made_at());
  EXPECT_EQ(updated.case_().last_note(), "customer was polite but tired");

  auto before = TenantSnapshot();
  v1::UpdateCaseResponse resp;
  v1::UpdateCaseRequest past = UpdateReq(c, "case-1");
  past.set_promise("refund yesterday");
  *past.mutable_promised_by() = FromNow(-absl::Hours(1));
  grpc::Status st = UpdateCase(past, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("promised_by"));

  st = UpdateCase(UpdateReq(c, "case-1"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "nothing: " << Describe(st);

  v1::UpdateCaseRequest lost = UpdateReq(c, "case-1");
  lost.set_stage("lost");
  st = UpdateCase(lost, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("stage"));

  v1::UpdateCaseRequest unknown = UpdateReq(c, "case-9");
  unknown.set_note("no such case");
  st = UpdateCase(unknown, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before) << "a refused UpdateCase wrote something";

  v1::Case k = GetCaseOk(c, "case-1");
  EXPECT_EQ(k.promise().text(), "refund by Friday");
  EXPECT_EQ(k.last_note(), "customer was polite but tired");
  EXPECT_EQ(k.stage(), "ordered");
  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).promise().text(), "refund by Friday");

  v1::UpdateCaseRequest move = UpdateReq(c, "case-1");
  move.set_stage("shipped");
  v1::UpdateCaseResponse moved = UpdateCaseOk(move);
  EXPECT_EQ(moved.case_().stage(), "shipped");
  EXPECT_GE(ToMillis(moved.case_().stage_entered_at()), ToMillis(k.stage_entered_at()));
  EXPECT_EQ(GetCaseOk(c, "case-1").stage(), "shipped");
}

TEST_F(CaseServiceTest, ARetriedUpdateIsADuplicate) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  v1::UpdateCaseRequest req = UpdateReq(c, "case-1");
  req.set_note("called the warehouse");
  req.set_request_id("update-1");
  v1::UpdateCaseResponse first = UpdateCaseOk(req);
  EXPECT_FALSE(first.duplicate());

  auto before = TenantSnapshot();
  v1::UpdateCaseResponse retry = UpdateCaseOk(req);
  EXPECT_TRUE(retry.duplicate());
  EXPECT_EQ(retry.case_().last_note(), "called the warehouse");
  EXPECT_EQ(TenantSnapshot(), before) << "a retried UpdateCase wrote something";
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_CASE_UPDATE), 1);
}

TEST_F(CaseServiceTest, ResolvingTwiceIsADuplicateAndAResolvedCaseStaysClosed) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  v1::ResolveCaseRequest req = ResolveReq(c, "case-1");
  req.set_resolution("refund issued");
  v1::ResolveCaseResponse first = ResolveCaseOk(req);
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.case_().state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(first.case_().resolution(), "refund issued");
  EXPECT_TRUE(first.case_().has_resolved_at());
  EXPECT_EQ(first.event().kind(), v1::EVENT_KIND_CASE_RESOLVED);
  EXPECT_EQ(first.event().case_id(), "case-1");

  auto before = TenantSnapshot();
  req.set_resolution("something else");
  v1::ResolveCaseResponse again = ResolveCaseOk(req);
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.case_().resolution(), "refund issued");
  EXPECT_EQ(TenantSnapshot(), before) << "a second ResolveCase wrote something";

  v1::UpdateCaseRequest update = UpdateReq(c, "case-1");
  update.set_note("too late");
  v1::UpdateCaseResponse uresp;
  grpc::Status st = UpdateCase(update, &uresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  v1::OpenCaseResponse oresp;
  st = OpenCase(OpenReq(c, "case-1", "refund"), &oresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);

  v1::Case k = GetCaseOk(c, "case-1");
  EXPECT_EQ(k.state(), v1::CASE_STATE_RESOLVED);
  EXPECT_EQ(k.resolution(), "refund issued");
  EXPECT_TRUE(k.last_note().empty());
  EXPECT_EQ(CountKind(Timeline(c), v1::EVENT_KIND_CASE_RESOLVED), 1);
  v1::GetContextResponse ctx = ContextOk(c);
  EXPECT_EQ(ctx.open_cases_size(), 0);
  EXPECT_FALSE(ctx.signals().has_since_case_opened());

  v1::ResolveCaseResponse rresp;
  st = ResolveCase(ResolveReq(c, "case-9"), &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
}

TEST_F(CaseServiceTest, CasesAreScopedByCustomerAndTenant) {
  std::string ann = NewCustomer("14155550100");
  std::string bob = NewCustomer("14155550101");
  OpenCaseOk(OpenReq(ann, "case-1", "refund"));
  v1::Case k;
  grpc::Status st = GetCase(bob, "case-1", &k);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::GetCaseRequest other_tenant;
  other_tenant.set_tenant("someone-else");
  other_tenant.mutable_customer()->set_customer_id(ann);
  other_tenant.set_case_id("case-1");
  st = server()->cases()->GetCase(Ctx().get(), other_tenant, &k);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  // Bob may use the same case id for a case of his own.
  v1::OpenCaseResponse bobs = OpenCaseOk(OpenReq(bob, "case-1", "broken screen"));
  EXPECT_FALSE(bobs.already_open());
  EXPECT_EQ(GetCaseOk(ann, "case-1").topic(), "refund");
  EXPECT_EQ(GetCaseOk(bob, "case-1").topic(), "broken screen");
}

TEST_F(CaseServiceTest, AtMost100OpenCasesPerCustomer) {
  std::string c = NewCustomer();
  for (int i = 0; i < 100; ++i) {
    OpenCaseOk(OpenReq(c, absl::StrCat("case-", i), "topic"));
    if (HasFailure()) return;
  }
  auto before = TenantSnapshot();
  v1::OpenCaseResponse resp;
  grpc::Status st = OpenCase(OpenReq(c, "case-100", "one too many"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);
  // A retry of an open one is still answered.
  EXPECT_TRUE(OpenCaseOk(OpenReq(c, "case-7", "topic")).already_open());
  // Resolving one makes room.
  ResolveCaseOk(ResolveReq(c, "case-0"));
  EXPECT_FALSE(OpenCaseOk(OpenReq(c, "case-100", "one more")).already_open());
  EXPECT_EQ(ContextOk(c).open_cases_size(), 100);
}

TEST_F(CaseServiceTest, OpenCasesAreListedLatestUpdateFirst) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));
  absl::SleepFor(absl::Milliseconds(5));
  OpenCaseOk(OpenReq(c, "case-2", "broken screen"));
  absl::SleepFor(absl::Milliseconds(5));
  OpenCaseOk(OpenReq(c, "case-3", "address change"));
  v1::GetContextResponse ctx = ContextOk(c);
  std::vector<std::string> ids;
  for (const auto& k : ctx.open_cases()) ids.push_back(k.case_id());
  EXPECT_THAT(ids, ElementsAre("case-3", "case-2", "case-1"));

  absl::SleepFor(absl::Milliseconds(5));
  v1::UpdateCaseRequest touch = UpdateReq(c, "case-1");
  touch.set_note("called back");
  v1::UpdateCaseResponse touched = UpdateCaseOk(touch);
  EXPECT_GT(ToMillis(touched.case_().updated_at()), ToMillis(touched.case_().opened_at()));
  ids.clear();
  ctx = ContextOk(c);
  for (const auto& k : ctx.open_cases()) ids.push_back(k.case_id());
  EXPECT_THAT(ids, ElementsAre("case-1", "case-3", "case-2"));
}

TEST_F(CaseServiceTest, JourneyStatsShowWhereCustomersAreStuck) {
  ASSERT_TRUE(SetJourney({"ordered", "shipped", "delivered"}).ok());
  std::string ann = NewCustomer("14155550100");
  std::string bob = NewCustomer("14155550101");
  // ann's case-a waits in "ordered", then moves to "shipped".
  OpenCaseOk(OpenReq(ann, "case-a", "where is it", v1::CHANNEL_WEB_CHAT));
  v1::OpenCaseRequest b = OpenReq(bob, "case-b", "late", v1::CHANNEL_WEB_CHAT);
  b.set_stage("shipped");
  OpenCaseOk(b);
  v1::OpenCaseRequest cc = OpenReq(bob, "case-c", "wrong item", v1::CHANNEL_EMAIL);
  cc.set_stage("shipped");
  OpenCaseOk(cc);
  absl::SleepFor(absl::Milliseconds(300));
  v1::UpdateCaseRequest move = UpdateReq(ann, "case-a");
  move.set_stage("shipped");
  UpdateCaseOk(move);
  ResolveCaseOk(ResolveReq(bob, "case-c"));
  // Bob calls about case-b: a repeat contact, and a switch from web chat to voice.
  v1::StartConversationRequest call = StartReq(bob, "call-1", v1::CHANNEL_VOICE, Agent("agent-7"));
  call.set_case_id("case-b");
  v1::StartConversationResponse started = StartOk(call);
  EXPECT_TRUE(started.has_repeat_contact());

  absl::SleepFor(absl::Milliseconds(100));  // case-a waits in "shipped" too

  v1::Case kb = GetCaseOk(bob, "case-b");
  EXPECT_EQ(kb.contacts(), 2);
  EXPECT_EQ(kb.repeat_contacts(), 1);
  EXPECT_EQ(kb.channel_switches(), 1);
  EXPECT_EQ(kb.last_channel(), v1::CHANNEL_VOICE);

  v1::GetJourneyStatsResponse stats = JourneyStats();
  ASSERT_EQ(stats.stages_size(), 3);
  EXPECT_EQ(stats.stages(0).stage(), "ordered");  // journey order
  EXPECT_EQ(stats.stages(1).stage(), "shipped");
  EXPECT_EQ(stats.stages(2).stage(), "delivered");
  const v1::StageStats* ordered = Stage(stats, "ordered");
  const v1::StageStats* shipped = Stage(stats, "shipped");
  const v1::StageStats* delivered = Stage(stats, "delivered");
  ASSERT_TRUE(ordered && shipped && delivered);
  EXPECT_EQ(ordered->open_cases(), 0);
  EXPECT_EQ(ordered->entered(), 1);
  // case-a stayed in "ordered" at least 300 ms before it left.
  EXPECT_GE(ToDuration(ordered->median_completed_time_in_stage()), absl::Milliseconds(250));
  EXPECT_EQ(shipped->open_cases(), 2);  // case-a and case-b; case-c was resolved
  EXPECT_EQ(shipped->entered(), 3);
  EXPECT_EQ(shipped->repeat_contacts(), 1);
  EXPECT_EQ(shipped->channel_switches(), 1);
  EXPECT_EQ(ordered->repeat_contacts(), 0);
  EXPECT_EQ(ordered->channel_switches(), 0);
  // case-b has waited in "shipped" since before the 300 ms pause; case-a since after it.
  EXPECT_GT(ToDuration(shipped->median_time_in_stage()), absl::ZeroDuration());
  EXPECT_GT(ToDuration(shipped->median_completed_time_in_stage()), absl::ZeroDuration())
      << "case-c left shipped when it was resolved";
  EXPECT_EQ(delivered->open_cases(), 0);
  EXPECT_EQ(delivered->entered(), 0);
  EXPECT_EQ(delivered->repeat_contacts(), 0);

  // Stats are per tenant.
  v1::GetJourneyStatsRequest other;
  other.set_tenant("JourneyStatsOfAnotherTenant");
  v1::GetJourneyStatsResponse none;
  grpc::Status st = server()->cases()->GetJourneyStats(Ctx().get(), other, &none);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(none.stages_size(), 0);
}

}  // namespace
}  // namespace onestory::testing
