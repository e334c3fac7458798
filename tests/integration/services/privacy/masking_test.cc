// Masking before storage, over real gRPC against a real redis-server: every free-text field a
// write stores (event text and attributes, case topic, note, promise, reassignment reason and
// resolution, conversation summaries, handoff reason and transcript, outcome and wrap-up code,
// fact values, profile display name, tier and attributes, merge and unmerge reasons) is masked
// (a card number, and a configured pattern) before it reaches Redis. No key holds the clear text
// (every key, audit log included, read back whole), every read (GetCase, GetContext, List, Watch,
// GetProfile, GetMergeHistory, ExportCustomer) shows the masked text, and so does the write's
// answer, on the first call and on a retry alike.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/privacy/free_text.h"
#include "libs/privacy/redactor.h"
#include "tests/integration/services/engagement/engagement_fixture.h"

namespace onestory::testing {
namespace {

using ::testing::IsEmpty;

// A card, and a configured pattern whose replacement is longer than the match.
constexpr char kCard[] = "4111 1111 1111 1111";
constexpr char kMaskedCard[] = "**** **** **** 1111";
constexpr char kMember[] = "MX4821";
constexpr char kMaskedMember[] = "[member_ref]";
// What a customer typed, and what must be stored instead.
const std::string kSaid = absl::StrCat("card ", kCard, " member ", kMember);
const std::string kStored = absl::StrCat("card ", kMaskedCard, " member ", kMaskedMember);

class MaskingTest : public EngagementFixture {
 protected:
  static void SetUpTestSuite() {
    redactor_ =
        new privacy::Redactor(*privacy::Redactor::Create({{"member_ref", R"(\bMX\d{4}\b)"}}));
    // The suite's server, given the redactor as the binary gives it (ServerOptions::redactor):
    // a store or log writer it does not reach keeps the member number in clear.
    redis_ = new RedisForTest();
    server_ = new ServerForTest(*redis_, [](service::ServerOptions* o) {
      Configure(o);
      o->redactor = redactor_;
    });
  }
  static void TearDownTestSuite() {
    EngagementFixture::TearDownTestSuite();
    delete redactor_;
  }

  // Every key (audit logs included) whose value holds `text`: each key's DUMP taken without
  // compression, and its values read back by type (a DUMP may encode them otherwise).
  std::vector<std::string> KeysHolding(const std::string& text) {
    redis()->Run({"CONFIG", "SET", "rdbcompression", "no"});
    std::vector<std::string> out;
    for (const redis::Reply& k : redis()->Run({"KEYS", "*"}).elements) {
      std::string all = redis()->Run({"DUMP", k.str}).str;
      std::string type = redis()->Run({"TYPE", k.str}).str;
      std::vector<std::string> read;
      if (type == "string") read = {"GET", k.str};
      if (type == "hash") read = {"HGETALL", k.str};
      if (type == "list") read = {"LRANGE", k.str, "0", "-1"};
      if (type == "set") read = {"SMEMBERS", k.str};
      if (type == "zset") read = {"ZRANGE", k.str, "0", "-1", "WITHSCORES"};
      if (type == "stream") read = {"XRANGE", k.str, "-", "+"};
      if (!read.empty()) Flatten(redis()->Run(read), &all);
      if (absl::StrContains(all, text)) out.push_back(k.str);
    }
    return out;
  }
  static void Flatten(const redis::Reply& r, std::string* out) {
    absl::StrAppend(out, "\n", r.str);
    for (const redis::Reply& e : r.elements) Flatten(e, out);
  }
  // Neither the card nor the pattern's match is anywhere in Redis, while their masks are.
  void ExpectNothingClearStored() {
    EXPECT_THAT(KeysHolding(kCard), IsEmpty());
    EXPECT_THAT(KeysHolding("4111111111111111"), IsEmpty());
    EXPECT_THAT(KeysHolding(kMember), IsEmpty());
    EXPECT_THAT(KeysHolding(kMaskedMember), ::testing::Not(IsEmpty()));
  }

  // ExportCustomer's documents, joined.
  std::string Export(const std::string& customer) {
    v1::ExportCustomerRequest req;
    req.set_tenant(tenant());
    *req.mutable_customer() = Ref(customer);
    auto ctx = Ctx();
    auto reader = server()->privacy()->ExportCustomer(ctx.get(), req);
    std::string all;
    v1::ExportCustomerChunk chunk;
    while (reader->Read(&chunk)) absl::StrAppend(&all, chunk.json(), "\n");
    grpc::Status st = reader->Finish();
    EXPECT_TRUE(st.ok()) << "ExportCustomer: " << Describe(st);
    return all;
  }
  // The export holds `masked` and nothing clear.
  void ExpectExportMasked(const std::string& customer, const std::string& masked) {
    std::string doc = Export(customer);
    EXPECT_THAT(doc, ::testing::HasSubstr(masked));
    EXPECT_THAT(doc, ::testing::Not(::testing::HasSubstr(kCard)));
    EXPECT_THAT(doc, ::testing::Not(::testing::HasSubstr(kMember)));
  }

  // The whole timeline through Watch (from the start), as a supervisor sees it.
  std::vector<v1::Event> Watched(const std::string& customer, size_t n) {
    v1::WatchRequest req;
    req.set_tenant(tenant());
    *req.mutable_customer() = Ref(customer);
    req.set_from_start(true);
    req.set_audience(v1::AUDIENCE_SUPERVISOR);
    auto ctx = Ctx(absl::Seconds(10));
    auto reader = server()->timeline()->Watch(ctx.get(), req);
    std::vector<v1::Event> out;
    v1::WatchResponse msg;
    while (out.size() < n && reader->Read(&msg)) out.push_back(msg.event());
    ctx->TryCancel();
    while (reader->Read(&msg)) {
    }
    (void)reader->Finish();
    EXPECT_EQ(out.size(), n);
    return out;
  }

  // Every event's text (summary, body, attribute values) through List, GetContext and Watch
  // holds no clear card or pattern match; returns the List's events.
  std::vector<v1::Event> ExpectEventsMasked(const std::string& customer) {
    std::vector<v1::Event> listed = Timeline(customer, v1::AUDIENCE_SUPERVISOR);
    v1::GetContextResponse ctx = ContextOk(customer, v1::AUDIENCE_SUPERVISOR, 200);
    std::vector<v1::Event> watched = Watched(customer, listed.size());
    for (const auto* events : {&listed, &watched}) {
      for (const v1::Event& e : *events) ExpectEventMasked(e);
    }
    EXPECT_EQ(ctx.recent_events_size(), static_cast<int>(listed.size()));
    for (const v1::Event& e : ctx.recent_events()) ExpectEventMasked(e);
    return listed;
  }
  static void ExpectEventMasked(const v1::Event& e) {
    std::string text = absl::StrCat(e.summary(), "|", e.body());
    for (const auto& [k, v] : e.attributes()) absl::StrAppend(&text, "|", v);
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr(kCard))) << e.DebugString();
    EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr(kMember))) << e.DebugString();
  }
  static const v1::Event* Find(const std::vector<v1::Event>& events, v1::EventKind kind) {
    for (const v1::Event& e : events) {
      if (e.kind() == kind) return &e;
    }
    ADD_FAILURE() << "no event of kind " << v1::EventKind_Name(kind);
    return nullptr;
  }

  static privacy::Redactor* redactor_;
};

privacy::Redactor* MaskingTest::redactor_ = nullptr;

TEST_F(MaskingTest, AppendedEventTextAndAttributes) {
  std::string c = NewCustomer();
  v1::Event e = Message("msg-1");
  e.set_summary(kSaid);
  e.set_body(absl::StrCat("body: ", kSaid));
  (*e.mutable_attributes())["said"] = kSaid;
  v1::AppendRequest req;
  req.set_tenant(tenant());
  *req.mutable_customer() = Ref(c);
  *req.add_events() = e;

  for (int call = 0; call < 2; ++call) {  // the first call and a retry answer alike
    v1::AppendResponse resp;
    grpc::Status st = server()->timeline()->Append(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
    ASSERT_EQ(resp.results_size(), 1);
    EXPECT_EQ(resp.results(0).duplicate(), call == 1);
    const v1::Event& got = resp.results(0).event();
    EXPECT_EQ(got.summary(), kStored) << "call " << call;
    EXPECT_EQ(got.body(), absl::StrCat("body: ", kStored)) << "call " << call;
    EXPECT_EQ(got.attributes().at("said"), kStored) << "call " << call;
  }

  std::vector<v1::Event> events = ExpectEventsMasked(c);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].summary(), kStored);
  EXPECT_EQ(events[0].attributes().at("said"), kStored);
  ExpectExportMasked(c, kStored);
  ExpectNothingClearStored();
}

TEST_F(MaskingTest, CaseTopicNotePromiseReassignReasonAndResolution) {
  std::string c = NewCustomer();
  v1::OpenCaseRequest open = OpenReq(c, "case-1", absl::StrCat("topic ", kSaid));
  *open.mutable_owner() = Agent("agent-1");
  for (int call = 0; call < 2; ++call) {
    v1::OpenCaseResponse resp = OpenCaseOk(open);
    EXPECT_EQ(resp.already_open(), call == 1);
    EXPECT_EQ(resp.case_().topic(), absl::StrCat("topic ", kStored)) << "call " << call;
    if (call == 0) ExpectEventMasked(resp.event());
  }

  v1::UpdateCaseRequest update = UpdateReq(c, "case-1");
  *update.mutable_owner() = Agent("agent-2");
  update.set_reassign_reason(absl::StrCat("reason ", kSaid));
  update.set_promise(absl::StrCat("promise ", kSaid));
  *update.mutable_promised_by() = FromNow(absl::Hours(48));
  update.set_note(absl::StrCat("note ", kSaid));
  update.set_request_id("upd-1");
  for (int call = 0; call < 2; ++call) {
    v1::UpdateCaseResponse resp = UpdateCaseOk(update);
    EXPECT_EQ(resp.duplicate(), call == 1);
    const v1::Case& k = resp.case_();
    EXPECT_EQ(k.last_note(), absl::StrCat("note ", kStored)) << "call " << call;
    EXPECT_EQ(k.promise().text(), absl::StrCat("promise ", kStored)) << "call " << call;
    ASSERT_EQ(k.owner_history_size(), 2) << "call " << call;
    EXPECT_EQ(k.owner_history(1).reason(), absl::StrCat("reason ", kStored)) << "call " << call;
    EXPECT_EQ(resp.event().body(), absl::StrCat("note ", kStored)) << "call " << call;
    EXPECT_EQ(resp.event().attributes().at("promise"), absl::StrCat("promise ", kStored))
        << "call " << call;
    EXPECT_EQ(resp.event().attributes().at("reassign_reason"), absl::StrCat("reason ", kStored))
        << "call " << call;
    ExpectEventMasked(resp.event());
  }

  // Every reader sees the masked case: GetCase, and GetContext's open cases.
  v1::Case got = GetCaseOk(c, "case-1");
  EXPECT_EQ(got.topic(), absl::StrCat("topic ", kStored));
  EXPECT_EQ(got.last_note(), absl::StrCat("note ", kStored));
  EXPECT_EQ(got.promise().text(), absl::StrCat("promise ", kStored));
  EXPECT_EQ(got.owner_history(1).reason(), absl::StrCat("reason ", kStored));
  v1::GetContextResponse ctx = ContextOk(c, v1::AUDIENCE_AGENT);
  ASSERT_EQ(ctx.open_cases_size(), 1);
  EXPECT_EQ(ctx.open_cases(0).topic(), absl::StrCat("topic ", kStored));
  EXPECT_EQ(ctx.open_cases(0).last_note(), absl::StrCat("note ", kStored));
  EXPECT_EQ(ctx.open_cases(0).promise().text(), absl::StrCat("promise ", kStored));

  v1::ResolveCaseRequest resolve = ResolveReq(c, "case-1");
  resolve.set_resolution(absl::StrCat("resolution ", kSaid));
  for (int call = 0; call < 2; ++call) {
    v1::ResolveCaseResponse resp = ResolveCaseOk(resolve);
    EXPECT_EQ(resp.duplicate(), call == 1);
    EXPECT_EQ(resp.case_().resolution(), absl::StrCat("resolution ", kStored)) << "call " << call;
    if (call == 0) ExpectEventMasked(resp.event());
  }
  EXPECT_EQ(GetCaseOk(c, "case-1").resolution(), absl::StrCat("resolution ", kStored));

  std::vector<v1::Event> events = ExpectEventsMasked(c);
  const v1::Event* opened = Find(events, v1::EVENT_KIND_CASE_OPENED);
  if (opened != nullptr) {
    EXPECT_THAT(opened->summary(), ::testing::HasSubstr(kStored));
  }
  ExpectExportMasked(c, absl::StrCat("resolution ", kStored));
  ExpectNothingClearStored();
}

TEST_F(MaskingTest, ConversationSummariesHandoffOutcomeWrapUpAndFacts) {
  std::string c = NewCustomer();
  v1::StartConversationRequest start = StartReq(c, "conv-1", v1::CHANNEL_CHATBOT, Bot("bot-1"));
  start.set_summary(absl::StrCat("start ", kSaid));
  for (int call = 0; call < 2; ++call) {
    v1::StartConversationResponse resp = StartOk(start);
    EXPECT_EQ(resp.already_started(), call == 1);
    EXPECT_EQ(resp.event().summary(), absl::StrCat("start ", kStored)) << "call " << call;
  }

  v1::HandoffRequest handoff = HandoffReq(c, "conv-1", Bot("bot-1"), Agent("agent-1"));
  handoff.set_reason(absl::StrCat("reason ", kSaid));
  handoff.set_summary(absl::StrCat("summary ", kSaid));
  handoff.set_transcript(absl::StrCat("transcript ", kSaid));
  *handoff.add_collected() = Collected("card_number", kSaid);
  handoff.set_request_id("ho-1");
  for (int call = 0; call < 2; ++call) {
    v1::HandoffResponse resp = HandoffOk(handoff);
    EXPECT_EQ(resp.duplicate(), call == 1);
    EXPECT_EQ(resp.event().summary(), absl::StrCat("summary ", kStored)) << "call " << call;
    EXPECT_EQ(resp.event().body(), absl::StrCat("transcript ", kStored)) << "call " << call;
    EXPECT_EQ(resp.event().attributes().at("reason"), absl::StrCat("reason ", kStored))
        << "call " << call;
  }

  v1::RecordFactsRequest facts =
      FactsReq(c, {Collected("member", kSaid), StepTried("restart", kSaid)});
  facts.set_request_id("facts-1");
  for (int call = 0; call < 2; ++call) {
    v1::RecordFactsResponse resp = RecordFactsOk(facts);
    EXPECT_EQ(resp.duplicate(), call == 1);
    ASSERT_EQ(resp.facts_size(), 2) << "call " << call;
    for (const v1::Fact& f : resp.facts()) EXPECT_EQ(f.value(), kStored) << "call " << call;
  }
  // Restated: previous_value is the masked value it replaced.
  v1::RecordFactsRequest again = FactsReq(c, {Collected("member", absl::StrCat("now ", kSaid))});
  v1::RecordFactsResponse restated = RecordFactsOk(again);
  ASSERT_EQ(restated.facts_size(), 1);
  EXPECT_EQ(restated.facts(0).value(), absl::StrCat("now ", kStored));
  EXPECT_EQ(restated.facts(0).previous_value(), kStored);

  // A wrap-up code is at most 64 bytes as sent; masking may lengthen it, and it is stored whole.
  std::string code = absl::StrCat(std::string(63 - strlen(kMember), 'W'), "-", kMember);
  std::string stored_code =
      absl::StrCat(std::string(63 - strlen(kMember), 'W'), "-", kMaskedMember);
  v1::EndConversationRequest end = EndReq(c, "conv-1", Agent("agent-1"));
  end.set_outcome(absl::StrCat("outcome ", kSaid));
  end.set_wrap_up_code(code);
  end.set_summary(absl::StrCat("end ", kSaid));
  for (int call = 0; call < 2; ++call) {
    v1::EndConversationResponse resp = EndOk(end);
    EXPECT_EQ(resp.duplicate(), call == 1);
    EXPECT_EQ(resp.conversation().outcome(), absl::StrCat("outcome ", kStored)) << "call " << call;
    EXPECT_EQ(resp.conversation().wrap_up_code(), stored_code) << "call " << call;
    EXPECT_EQ(resp.event().summary(), absl::StrCat("end ", kStored)) << "call " << call;
    EXPECT_EQ(resp.event().attributes().at("wrap_up_code"), stored_code) << "call " << call;
  }

  v1::GetContextResponse ctx = ContextOk(c, v1::AUDIENCE_SUPERVISOR);
  const v1::Fact* card = FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "card_number");
  ASSERT_NE(card, nullptr);
  EXPECT_EQ(card->value(), kStored);
  const v1::Fact* member = FindFact(ctx.facts(), v1::FACT_TYPE_COLLECTED, "member");
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(member->previous_value(), kStored);
  std::vector<v1::Event> events = ExpectEventsMasked(c);
  EXPECT_EQ(CountKind(events, v1::EVENT_KIND_HANDOFF), 1);
  ExpectExportMasked(c, absl::StrCat("outcome ", kStored));
  ExpectNothingClearStored();
}

TEST_F(MaskingTest, ProfileDisplayNameTierAndAttributes) {
  std::string c = NewCustomer();
  v1::UpdateProfileRequest req;
  req.set_tenant(tenant());
  req.set_customer_id(c);
  req.mutable_profile()->set_display_name(absl::StrCat("Jo ", kMember));
  req.mutable_profile()->set_tier(kCard);
  (*req.mutable_profile()->mutable_attributes())["note"] = kSaid;
  (*req.mutable_profile()->mutable_attributes())["other"] = kSaid;
  for (const char* path : {"display_name", "tier", "attributes.note", "attributes.other"}) {
    req.mutable_update_mask()->add_paths(path);
  }
  auto expect_masked = [&](const v1::Profile& p, const std::string& what) {
    EXPECT_EQ(p.display_name(), absl::StrCat("Jo ", kMaskedMember)) << what;
    EXPECT_EQ(p.tier(), kMaskedCard) << what;
    EXPECT_EQ(p.attributes().at("note"), kStored) << what;
    EXPECT_EQ(p.attributes().at("other"), kStored) << what;
  };
  for (int call = 0; call < 2; ++call) {
    v1::UpdateProfileResponse resp;
    grpc::Status st = server()->identity()->UpdateProfile(Ctx().get(), req, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
    expect_masked(resp.profile(), absl::StrCat("UpdateProfile call ", call));
  }
  // The whole map replaced: masked the same way.
  req.mutable_update_mask()->Clear();
  req.mutable_update_mask()->add_paths("attributes");
  v1::UpdateProfileResponse replaced;
  ASSERT_TRUE(server()->identity()->UpdateProfile(Ctx().get(), req, &replaced).ok());
  expect_masked(replaced.profile(), "attributes replaced");

  v1::GetProfileRequest get;
  get.set_tenant(tenant());
  *get.mutable_customer() = Ref(c);
  v1::GetProfileResponse got;
  ASSERT_TRUE(server()->identity()->GetProfile(Ctx().get(), get, &got).ok());
  expect_masked(got.profile(), "GetProfile");
  expect_masked(ContextOk(c).profile(), "GetContext");
  ExpectExportMasked(c, kStored);
  ExpectNothingClearStored();
}

TEST_F(MaskingTest, MergeAndUnmergeReasons) {
  std::string source = NewCustomer("14155550101");
  std::string target = NewCustomer("14155550102");
  v1::MergeRequest merge;
  merge.set_tenant(tenant());
  merge.set_source_customer_id(source);
  merge.set_target_customer_id(target);
  merge.set_reason(absl::StrCat("merge ", kSaid));
  *merge.mutable_actor() = Agent("agent-1");
  std::string merge_id;
  for (int call = 0; call < 2; ++call) {
    v1::MergeResponse resp;
    grpc::Status st = server()->identity()->Merge(Ctx().get(), merge, &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
    EXPECT_EQ(resp.already_merged(), call == 1);
    EXPECT_EQ(resp.merge().reason(), absl::StrCat("merge ", kStored)) << "call " << call;
    merge_id = resp.merge().merge_id();
  }

  v1::UnmergeRequest unmerge;
  unmerge.set_tenant(tenant());
  unmerge.set_merge_id(merge_id);
  unmerge.set_reason(absl::StrCat("unmerge ", kSaid));
  *unmerge.mutable_actor() = Agent("agent-1");
  v1::UnmergeResponse undone;
  grpc::Status st = server()->identity()->Unmerge(Ctx().get(), unmerge, &undone);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(undone.merge().unmerge_reason(), absl::StrCat("unmerge ", kStored));
  EXPECT_EQ(undone.merge().reason(), absl::StrCat("merge ", kStored));  // not masked twice

  v1::GetMergeHistoryRequest history;
  history.set_tenant(tenant());
  history.set_customer_id(target);
  v1::GetMergeHistoryResponse merges;
  ASSERT_TRUE(server()->identity()->GetMergeHistory(Ctx().get(), history, &merges).ok());
  ASSERT_EQ(merges.merges_size(), 1);
  EXPECT_EQ(merges.merges(0).reason(), absl::StrCat("merge ", kStored));
  EXPECT_EQ(merges.merges(0).unmerge_reason(), absl::StrCat("unmerge ", kStored));
  ExpectNothingClearStored();
}

TEST_F(MaskingTest, TextAtItsLimitIsStoredWhenMaskingLengthensIt) {
  std::string c = NewCustomer();
  // 256 bytes as sent (the topic's limit), 262 once masked: accepted and stored whole.
  std::string topic = absl::StrCat(std::string(255 - strlen(kMember), 't'), " ", kMember);
  v1::OpenCaseResponse resp = OpenCaseOk(OpenReq(c, "case-long", topic));
  std::string stored = absl::StrCat(std::string(255 - strlen(kMember), 't'), " ", kMaskedMember);
  EXPECT_EQ(resp.case_().topic(), stored);
  EXPECT_EQ(GetCaseOk(c, "case-long").topic(), stored);
  // Over the limit as sent is refused as before, whatever masking would make of it.
  v1::OpenCaseResponse refused;
  grpc::Status st = OpenCase(OpenReq(c, "case-over", topic + "t"), &refused);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(st);
  EXPECT_THAT(KeysHolding(kMember), IsEmpty());
}

}  // namespace
}  // namespace onestory::testing
