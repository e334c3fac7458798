// AlertService over real gRPC against a real redis-server: NEGATIVE_STREAK once per streak,
// REPEAT_CONTACT once per case on its third contact, PROMISE_OVERDUE once per promise however
// many instances scan for it (and never for a case updated or resolved after the promise), the
// server's thresholds, WatchAlerts live and resumed from a cursor, AckAlert, and ListAlerts
// paging. Background work is awaited with bounded polls, never with timed assertions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/keys/key_schema.h"
#include "tests/integration/services/engagement/engagement_fixture.h"

namespace onestory::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class AlertServiceTest : public EngagementFixture {
 protected:
  // Three negative messages in a row from a new customer: one NEGATIVE_STREAK alert.
  std::string RaiseNegativeStreak(const std::string& phone) {
    std::string c = NewCustomer(phone);
    for (int i = 0; i < 3; ++i) {
      AppendOk(c, {Message(absl::StrCat("angry-", i), v1::CHANNEL_WEB_CHAT, -0.8f)});
    }
    return c;
  }

  // A case with a promise due `due_in` from now; returns promised_by as stored, in ms.
  int64_t CaseWithPromise(const std::string& customer, const std::string& case_id,
                          absl::Duration due_in, const std::string& text = "refund by Friday") {
    OpenCaseOk(OpenReq(customer, case_id, "refund"));
    v1::UpdateCaseRequest req = UpdateReq(customer, case_id);
    req.set_promise(text);
    *req.mutable_promised_by() = FromNow(due_in);
    v1::UpdateCaseResponse resp = UpdateCaseOk(req);
    EXPECT_EQ(resp.case_().promise().text(), text);
    return ToMillis(resp.case_().promise().promised_by());
  }

  struct AlertWatch {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<v1::Alert>> reader;
    void Stop() {
      ctx->TryCancel();
      v1::Alert ignored;
      while (reader->Read(&ignored)) {
      }
      reader->Finish();
    }
  };
  AlertWatch WatchAlerts(const std::string& after_cursor, bool from_start = false) {
    v1::WatchAlertsRequest req;
    req.set_tenant(tenant());
    req.set_after_cursor(after_cursor);
    req.set_from_start(from_start);
    AlertWatch w;
    w.ctx = Ctx(absl::Seconds(20));
    w.reader = server()->alerts()->WatchAlerts(w.ctx.get(), req);
    return w;
  }
};

TEST_F(AlertServiceTest, ANegativeStreakRaisesOneAlertPerStreak) {
  std::string c = NewCustomer();
  AppendOk(c, {Message("m1", v1::CHANNEL_WEB_CHAT, -0.6f)});
  AppendOk(c, {Message("m2", v1::CHANNEL_VOICE, -0.7f)});
  EXPECT_TRUE(AlertsOfKind(v1::ALERT_KIND_NEGATIVE_STREAK).empty()) << "only two so far";
  AppendOk(c, {Message("m3", v1::CHANNEL_SMS, -0.9f)});
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1));
  std::vector<v1::Alert> alerts = AlertsOfKind(v1::ALERT_KIND_NEGATIVE_STREAK);
  ASSERT_EQ(alerts.size(), 1u);
  const v1::Alert& a = alerts[0];
  EXPECT_THAT(a.alert_id(), StartsWith(absl::StrCat("negative_streak:", c, ":")));
  EXPECT_EQ(a.customer_id(), c);
  EXPECT_TRUE(a.case_id().empty());
  EXPECT_FALSE(a.message().empty());
  EXPECT_TRUE(a.has_raised_at());
  EXPECT_FALSE(a.acknowledged());
  EXPECT_FALSE(a.cursor().empty());

  // The streak goes on: the same streak, no second alert.
  AppendOk(c, {Message("m4", v1::CHANNEL_SMS, -0.5f)});
  EXPECT_EQ(ContextOk(c).signals().negative_streak(), 4);
  EXPECT_EQ(AlertsOfKind(v1::ALERT_KIND_NEGATIVE_STREAK).size(), 1u);

  // A positive interaction ends it; three more negatives are a new streak.
  AppendOk(c, {Message("p1", v1::CHANNEL_WEB_CHAT, 0.8f)});
  EXPECT_EQ(ContextOk(c).signals().negative_streak(), 0);
  for (int i = 5; i <= 7; ++i) {
    AppendOk(c, {Message(absl::StrCat("m", i), v1::CHANNEL_WEB_CHAT, -0.8f)});
  }
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 2));
  alerts = AlertsOfKind(v1::ALERT_KIND_NEGATIVE_STREAK);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_NE(alerts[0].alert_id(), alerts[1].alert_id());
  for (const auto& x : alerts) EXPECT_EQ(x.customer_id(), c);
}

TEST_F(AlertServiceTest, TheThirdContactAboutACaseRaisesOneRepeatContactAlert) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "order 1234 not delivered"));         // contact 1
  StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));  // contact 2
  EXPECT_TRUE(AlertsOfKind(v1::ALERT_KIND_REPEAT_CONTACT).empty()) << "two contacts so far";
  v1::StartConversationResponse third =
      StartOk(StartReq(c, "chat-2", v1::CHANNEL_WEB_CHAT, Agent("agent-8")));
  EXPECT_EQ(third.repeat_contact().contacts(), 3);
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_REPEAT_CONTACT, 1));
  std::vector<v1::Alert> alerts = AlertsOfKind(v1::ALERT_KIND_REPEAT_CONTACT);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].alert_id(), absl::StrCat("repeat_contact:", c, ":case-1"));
  EXPECT_EQ(alerts[0].customer_id(), c);
  EXPECT_EQ(alerts[0].case_id(), "case-1");
  EXPECT_FALSE(alerts[0].message().empty());

  StartOk(StartReq(c, "call-3", v1::CHANNEL_VOICE, Agent("agent-7")));  // contact 4
  EXPECT_EQ(GetCaseOk(c, "case-1").contacts(), 4);
  EXPECT_EQ(AlertsOfKind(v1::ALERT_KIND_REPEAT_CONTACT).size(), 1u);
  EXPECT_TRUE(AlertsOfKind(v1::ALERT_KIND_NEGATIVE_STREAK).empty());
}

TEST_F(AlertServiceTest, ContactsSeenOnAppendedEventsRaiseTheRepeatContactAlertToo) {
  std::string c = NewCustomer();
  OpenCaseOk(OpenReq(c, "case-1", "refund"));  // contact 1
  v1::Event sms = Message("sms-1", v1::CHANNEL_SMS, std::nullopt, "sms-conv-1");
  sms.set_case_id("case-1");
  AppendOk(c, {sms});  // contact 2
  v1::Event mail = Message("mail-1", v1::CHANNEL_EMAIL, std::nullopt, "mail-conv-1");
  mail.set_case_id("case-1");
  AppendOk(c, {mail});  // contact 3
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_REPEAT_CONTACT, 1));
  std::vector<v1::Alert> alerts = AlertsOfKind(v1::ALERT_KIND_REPEAT_CONTACT);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].alert_id(), absl::StrCat("repeat_contact:", c, ":case-1"));
  v1::Case k = GetCaseOk(c, "case-1");
  EXPECT_EQ(k.contacts(), 3);
  EXPECT_EQ(k.repeat_contacts(), 2);
  EXPECT_EQ(k.channel_switches(), 2);  // web chat, sms, email
}

TEST_F(AlertServiceTest, AnOverduePromiseRaisesOneAlert) {
  std::string c = NewCustomer();
  int64_t due_ms = CaseWithPromise(c, "case-1", absl::Seconds(2));
  EXPECT_TRUE(AlertsOfKind(v1::ALERT_KIND_PROMISE_OVERDUE).empty()) << "not due yet";

  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_PROMISE_OVERDUE, 1));
  absl::SleepFor(5 * kPromiseScanInterval);  // more scans find nothing new
  std::vector<v1::Alert> alerts = AlertsOfKind(v1::ALERT_KIND_PROMISE_OVERDUE);
  ASSERT_EQ(alerts.size(), 1u);
  const v1::Alert& a = alerts[0];
  EXPECT_EQ(a.alert_id(), absl::StrCat("promise_overdue:", c, ":case-1:", due_ms));
  EXPECT_EQ(a.customer_id(), c);
  EXPECT_EQ(a.case_id(), "case-1");
  EXPECT_THAT(a.message(), HasSubstr("refund by Friday"));
  EXPECT_GE(ToMillis(a.raised_at()), due_ms);
  EXPECT_FALSE(a.acknowledged());

  v1::Case k = GetCaseOk(c, "case-1");
  EXPECT_EQ(k.state(), v1::CASE_STATE_OPEN);
  EXPECT_EQ(k.promise().text(), "refund by Friday");
}

TEST_F(AlertServiceTest, SeveralInstancesRaiseEachOverduePromiseOnce) {
  ServerForTest second(*redis(), &EngagementFixture::Configure);
  ServerForTest third(*redis(), &EngagementFixture::Configure);
  std::set<std::string> expected;
  for (int i = 0; i < 3; ++i) {
    std::string c = NewCustomer(absl::StrCat("1415555010", i));
    int64_t due_ms = CaseWithPromise(c, "case-1", absl::Milliseconds(1500));
    expected.insert(absl::StrCat("promise_overdue:", c, ":case-1:", due_ms));
  }
  // A case id may hold any printable ASCII but spaces, separators included.
  std::string d = NewCustomer("14155550109");
  const std::string awkward = "order|1234:{x}\\\"q";
  int64_t awkward_due = CaseWithPromise(d, awkward, absl::Milliseconds(1500));
  expected.insert(absl::StrCat("promise_overdue:", d, ":", awkward, ":", awkward_due));

  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_PROMISE_OVERDUE, 4));
  absl::SleepFor(5 * kPromiseScanInterval);
  std::vector<v1::Alert> alerts = AlertsOfKind(v1::ALERT_KIND_PROMISE_OVERDUE);
  std::set<std::string> ids;
  for (const auto& a : alerts) {
    ids.insert(a.alert_id());
    if (a.customer_id() == d) {
      EXPECT_EQ(a.case_id(), awkward);
    }
  }
  EXPECT_EQ(alerts.size(), 4u) << "three instances scanned; each promise must alert once";
  EXPECT_EQ(ids, expected);
}

TEST_F(AlertServiceTest, AnUpdateAResolveOrANewPromisePreventsTheAlert) {
  std::string c = NewCustomer();
  CaseWithPromise(c, "updated", absl::Milliseconds(1500));
  CaseWithPromise(c, "resolved", absl::Milliseconds(1500));
  absl::SleepFor(absl::Milliseconds(5));  // the update comes after the promise
  v1::UpdateCaseRequest note = UpdateReq(c, "updated");
  note.set_note("refund sent, customer told");
  UpdateCaseOk(note);
  ResolveCaseOk(ResolveReq(c, "resolved"));
  // A promise replaced by a later one: only the later one can become overdue.
  CaseWithPromise(c, "replaced", absl::Milliseconds(1500));
  v1::UpdateCaseRequest again = UpdateReq(c, "replaced");
  again.set_promise("refund by Monday");
  *again.mutable_promised_by() = FromNow(absl::Milliseconds(1900));
  int64_t replaced_due = ToMillis(UpdateCaseOk(again).case_().promise().promised_by());
  // The control: due last but one, left alone. Once it and the replacement alerted, every
  // other promise was due and scanned.
  int64_t control_due = CaseWithPromise(c, "control", absl::Milliseconds(1800));

  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_PROMISE_OVERDUE, 2));
  absl::SleepFor(5 * kPromiseScanInterval);
  std::set<std::string> ids;
  for (const auto& a : AlertsOfKind(v1::ALERT_KIND_PROMISE_OVERDUE)) ids.insert(a.alert_id());
  EXPECT_EQ(ids, (std::set<std::string>{
                     absl::StrCat("promise_overdue:", c, ":control:", control_due),
                     absl::StrCat("promise_overdue:", c, ":replaced:", replaced_due)}));
  EXPECT_EQ(GetCaseOk(c, "updated").last_note(), "refund sent, customer told");
}

TEST_F(AlertServiceTest, AlertThresholdsFollowTheServersPolicy) {
  ServerForTest strict(*redis(), [](service::ServerOptions* o) {
    Configure(o);
    o->engagement_policy.alert_negative_streak = 2;
    o->engagement_policy.alert_repeat_contacts = 2;
  });
  std::string c = NewCustomer();
  for (int i = 0; i < 2; ++i) {
    v1::AppendRequest req;
    req.set_tenant(tenant());
    req.mutable_customer()->set_customer_id(c);
    *req.add_events() = Message(absl::StrCat("m", i), v1::CHANNEL_WEB_CHAT, -0.9f);
    v1::AppendResponse resp;
    grpc::Status st = strict.timeline()->Append(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
  }
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1)) << "two negatives, threshold 2";

  v1::OpenCaseRequest open = OpenReq(c, "case-1", "refund");
  v1::OpenCaseResponse opened;
  ASSERT_TRUE(strict.cases()->OpenCase(Ctx().get(), open, &opened).ok());
  StartOk(StartReq(c, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")), &strict);
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_REPEAT_CONTACT, 1)) << "two contacts, threshold 2";
  EXPECT_EQ(AlertsOfKind(v1::ALERT_KIND_REPEAT_CONTACT)[0].case_id(), "case-1");
}

TEST_F(AlertServiceTest, WatchAlertsStreamsNewAlertsAndResumesFromACursor) {
  RaiseNegativeStreak("14155550100");
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1));
  v1::Alert a1 = AlertsOfKind(v1::ALERT_KIND_NEGATIVE_STREAK)[0];

  // Watching after a1: the next alert arrives.
  AlertWatch w = WatchAlerts(a1.cursor());
  std::string bob = NewCustomer("14155550101");
  OpenCaseOk(OpenReq(bob, "case-1", "refund"));
  StartOk(StartReq(bob, "call-1", v1::CHANNEL_VOICE, Agent("agent-7")));
  StartOk(StartReq(bob, "call-2", v1::CHANNEL_VOICE, Agent("agent-7")));
  v1::Alert a2;
  ASSERT_TRUE(w.reader->Read(&a2)) << "no alert after a1";
  EXPECT_EQ(a2.kind(), v1::ALERT_KIND_REPEAT_CONTACT);
  EXPECT_EQ(a2.customer_id(), bob);
  EXPECT_FALSE(a2.cursor().empty());
  w.Stop();

  // Raised while nobody watched: a watch resumed from a2's cursor gets it, and nothing before.
  std::string carl = RaiseNegativeStreak("14155550102");
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 2));
  AlertWatch resumed = WatchAlerts(a2.cursor());
  v1::Alert a3;
  ASSERT_TRUE(resumed.reader->Read(&a3));
  EXPECT_EQ(a3.kind(), v1::ALERT_KIND_NEGATIVE_STREAK);
  EXPECT_EQ(a3.customer_id(), carl);
  resumed.Stop();

  // From the start: every stored alert, oldest first.
  AlertWatch all = WatchAlerts("", /*from_start=*/true);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    v1::Alert a;
    ASSERT_TRUE(all.reader->Read(&a)) << "alert " << i;
    ids.push_back(a.alert_id());
  }
  all.Stop();
  EXPECT_EQ(ids, (std::vector<std::string>{a1.alert_id(), a2.alert_id(), a3.alert_id()}));

  // ListAlerts agrees, newest first, and a listed alert's cursor resumes a watch just after it.
  std::vector<v1::Alert> listed = Alerts();
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].alert_id(), a3.alert_id());
  EXPECT_EQ(listed[1].alert_id(), a2.alert_id());
  EXPECT_EQ(listed[2].alert_id(), a1.alert_id());
  AlertWatch from_listed = WatchAlerts(listed[1].cursor());
  v1::Alert next;
  ASSERT_TRUE(from_listed.reader->Read(&next));
  EXPECT_EQ(next.alert_id(), a3.alert_id());
  from_listed.Stop();
}

TEST_F(AlertServiceTest, AWatchWithoutACursorGetsOnlyNewAlerts) {
  RaiseNegativeStreak("14155550100");
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1));
  std::string old_id = Alerts()[0].alert_id();

  AlertWatch w = WatchAlerts("");
  // The watch may take a moment to subscribe: keep raising new alerts until one arrives, so
  // nothing here depends on timing.
  std::atomic<bool> got{false};
  absl::Mutex mu;
  std::set<std::string> raised_for;
  std::thread raiser([&] {
    for (int i = 1; i <= 40 && !got.load(); ++i) {
      std::string c = RaiseNegativeStreak(absl::StrCat("141555502", 10 + i));
      {
        absl::MutexLock lock(&mu);
        raised_for.insert(c);
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  v1::Alert a;
  bool read = w.reader->Read(&a);
  got = true;
  raiser.join();
  w.Stop();
  ASSERT_TRUE(read) << "no live alert arrived";
  EXPECT_NE(a.alert_id(), old_id) << "a watch without a cursor replayed an old alert";
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(raised_for.count(a.customer_id())) << a.DebugString();
}

TEST_F(AlertServiceTest, AWatchEndsWithUnavailableWhenTheServerShutsDown) {
  RaiseNegativeStreak("14155550100");
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1));
  auto leaving = std::make_unique<ServerForTest>(*redis(), &EngagementFixture::Configure);
  v1::WatchAlertsRequest req;
  req.set_tenant(tenant());
  req.set_from_start(true);
  auto ctx = Ctx(absl::Seconds(20));
  auto reader = leaving->alerts()->WatchAlerts(ctx.get(), req);
  v1::Alert a;
  ASSERT_TRUE(reader->Read(&a)) << "the stored alert";  // the watch is up
  leaving.reset();                                      // Shutdown
  while (reader->Read(&a)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(st);
}

TEST_F(AlertServiceTest, AlertsStayInTheirTenant) {
  const std::string mine = tenant();
  const std::string other = mine + "-other";
  AlertWatch w = WatchAlerts("", /*from_start=*/true);  // this tenant has no alert yet
  tenant_ = other;
  std::string theirs = RaiseNegativeStreak("14155550100");
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1));
  std::string their_id = Alerts()[0].alert_id();
  tenant_ = mine;
  EXPECT_TRUE(Alerts().empty()) << "another tenant's alert is listed";
  v1::Alert none;
  grpc::Status st = AckAlert(their_id, Agent("supervisor-1"), &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  std::string ours = RaiseNegativeStreak("14155550100");
  v1::Alert a;
  ASSERT_TRUE(w.reader->Read(&a));
  EXPECT_EQ(a.customer_id(), ours) << "the watch got another tenant's alert";
  EXPECT_NE(a.alert_id(), their_id);
  w.Stop();
}

TEST_F(AlertServiceTest, MalformedCursorIsInvalidArgument) {
  AlertWatch w = WatchAlerts("not-a-cursor");
  v1::Alert a;
  EXPECT_FALSE(w.reader->Read(&a));
  grpc::Status st = w.reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
}

TEST_F(AlertServiceTest, AnAcknowledgedAlertIsNoLongerOpen) {
  std::string c = RaiseNegativeStreak("14155550100");
  ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, 1));
  v1::Alert raised = Alerts(/*include_acknowledged=*/false)[0];

  v1::Alert acked;
  grpc::Status st = AckAlert(raised.alert_id(), Agent("supervisor-1"), &acked);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(acked.alert_id(), raised.alert_id());
  EXPECT_TRUE(acked.acknowledged());
  EXPECT_TRUE(SameActor(acked.acknowledged_by(), Agent("supervisor-1")));
  EXPECT_TRUE(acked.has_acknowledged_at());

  EXPECT_TRUE(Alerts(/*include_acknowledged=*/false).empty());
  std::vector<v1::Alert> all = Alerts(/*include_acknowledged=*/true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].acknowledged());
  EXPECT_TRUE(SameActor(all[0].acknowledged_by(), Agent("supervisor-1")));

  // Again, by someone else: unchanged.
  auto before = TenantSnapshot();
  v1::Alert again;
  st = AckAlert(raised.alert_id(), Agent("supervisor-2"), &again);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_TRUE(again.acknowledged());
  EXPECT_TRUE(SameActor(again.acknowledged_by(), Agent("supervisor-1")));
  EXPECT_EQ(ToMillis(again.acknowledged_at()), ToMillis(acked.acknowledged_at()));
  EXPECT_EQ(TenantSnapshot(), before);

  v1::Alert none;
  st = AckAlert("negative_streak:nobody:0-1", Agent("supervisor-1"), &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  st = AckAlert(raised.alert_id(), v1::Actor(), &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  v1::AckAlertRequest other_tenant;
  other_tenant.set_tenant("AnotherTenantsAlerts");
  other_tenant.set_alert_id(raised.alert_id());
  *other_tenant.mutable_actor() = Agent("supervisor-1");
  st = server()->alerts()->AckAlert(Ctx().get(), other_tenant, &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_EQ(TenantSnapshot(), before);
}

TEST_F(AlertServiceTest, ListAlertsPagesNewestFirst) {
  std::vector<std::string> customers;
  for (int i = 0; i < 3; ++i) {
    customers.push_back(RaiseNegativeStreak(absl::StrCat("1415555010", i)));
    ASSERT_TRUE(WaitForAlerts(v1::ALERT_KIND_NEGATIVE_STREAK, i + 1));
  }
  v1::ListAlertsRequest req;
  req.set_tenant(tenant());
  req.set_page_size(2);
  v1::ListAlertsResponse page1;
  grpc::Status st = ListAlerts(req, &page1);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(page1.alerts_size(), 2);
  EXPECT_EQ(page1.alerts(0).customer_id(), customers[2]);
  EXPECT_EQ(page1.alerts(1).customer_id(), customers[1]);
  ASSERT_FALSE(page1.next_page_token().empty());
  req.set_page_token(page1.next_page_token());
  v1::ListAlertsResponse page2;
  st = ListAlerts(req, &page2);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(page2.alerts_size(), 1);
  EXPECT_EQ(page2.alerts(0).customer_id(), customers[0]);
  EXPECT_TRUE(page2.next_page_token().empty());

  v1::ListAlertsResponse bad;
  v1::ListAlertsRequest too_big;
  too_big.set_tenant(tenant());
  too_big.set_page_size(501);
  st = ListAlerts(too_big, &bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  v1::ListAlertsRequest bad_token;
  bad_token.set_tenant(tenant());
  bad_token.set_page_token("garbage");
  st = ListAlerts(bad_token, &bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);

  // Another tenant sees none of them.
  v1::ListAlertsRequest other;
  other.set_tenant("SomeoneElsesAlerts");
  v1::ListAlertsResponse empty;
  st = ListAlerts(other, &empty);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(empty.alerts_size(), 0);
}

TEST_F(AlertServiceTest, OneListAlertsCallExaminesAtMostItsBudgetAcrossTheBuckets) {
  // One bucket's log: an open alert, then 300 acknowledged ones after it (written as the outbox
  // writes them; not in the open set).
  const std::string customer = "cus_budget0000000000000000000";
  const keys::TenantKeys tk(tenant(), keys::TenantBucket(customer));
  auto add = [&](int i) {
    const std::string id = absl::StrCat("negative_streak:", customer, ":", i, "-0");
    redis()->Run({"XADD", tk.alert_log(), "*", "id", id, "k",
                  absl::StrCat(static_cast<int>(v1::ALERT_KIND_NEGATIVE_STREAK)), "c", customer,
                  "ca", "", "msg", "3 negative", "at", "1700000000000"});
    return id;
  };
  const std::string open_id = add(0);
  redis()->Run({"ZADD", tk.alert_open(), "1700000000000", open_id});
  for (int i = 1; i <= 300; ++i) add(i);

  // Open only, pages of 50: a call examines 2,000 / 16 = 125 entries of the bucket, so the
  // open alert behind 300 acknowledged ones comes on the third page, each page short but with
  // a token, and only once.
  v1::ListAlertsRequest req;
  req.set_tenant(tenant());
  req.set_page_size(50);
  std::vector<std::string> found;
  int pages = 0;
  do {
    v1::ListAlertsResponse page;
    grpc::Status st = ListAlerts(req, &page);
    ASSERT_TRUE(st.ok()) << Describe(st);
    ++pages;
    for (const v1::Alert& a : page.alerts()) found.push_back(a.alert_id());
    if (pages == 1) {
      EXPECT_EQ(page.alerts_size(), 0);
      EXPECT_FALSE(page.next_page_token().empty());
    }
    req.set_page_token(page.next_page_token());
  } while (!req.page_token().empty() && pages < 10);
  EXPECT_EQ(found, std::vector<std::string>{open_id});
  EXPECT_EQ(pages, 3);

  // With acknowledged alerts every entry examined is listed: full pages.
  v1::ListAlertsRequest all;
  all.set_tenant(tenant());
  all.set_include_acknowledged(true);
  all.set_page_size(200);
  v1::ListAlertsResponse page;
  grpc::Status st = ListAlerts(all, &page);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(page.alerts_size(), 200);
  EXPECT_FALSE(page.next_page_token().empty());
}

}  // namespace
}  // namespace onestory::testing
