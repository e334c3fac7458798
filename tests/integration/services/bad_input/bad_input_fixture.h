// The bad-input catalogue's shared fixture: one redis-server and one in-process server per test
// binary, blocking calls with a deadline to every service (Api), the valid state every case
// starts from (State, MakeState), the request builders the cases spoil, and the case itself
// (BadInputCase) with the runner that checks it (ServicesTest, bad_input_test.cc).
//
// Every case starts from the same valid state in a tenant of its own (two customers, a few
// events, a cursor and a page token), adds what it needs beyond that (a merge, a conversation, a
// case, a journey, alerts), takes a Snapshot() of every Redis key, sends one bad request with a
// deadline and checks the code, the message and that the snapshot is unchanged. The cases live
// in one file per service (bad_input_cases.h).
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "onestory/v1/alert.grpc.pb.h"
#include "onestory/v1/case.grpc.pb.h"
#include "onestory/v1/context.grpc.pb.h"
#include "onestory/v1/conversation.grpc.pb.h"
#include "onestory/v1/identity.grpc.pb.h"
#include "onestory/v1/privacy.grpc.pb.h"
#include "onestory/v1/timeline.grpc.pb.h"
#include "tests/testing/proto_builders.h"
#include "tests/testing/redis_for_test.h"
#include "tests/testing/server_for_test.h"

namespace onestory::testing::bad_input {

inline constexpr auto Ident = onestory::testing::Id;

inline constexpr std::chrono::seconds kCallTimeout{5};

inline constexpr char kCustomerPhone[] = "+1 (415) 555-0100";  // owned by State::customer
inline constexpr char kOtherEmail[] = "Other@Example.com";     // owned by State::other
inline constexpr char kUnownedPhone[] = "+1 415 555 0199";     // owned by nobody
inline constexpr char kUnownedPhoneNormalized[] = "14155550199";
inline constexpr char kUnknownCustomer[] = "cus_nobody";

std::string Describe(const grpc::Status& st);

// Blocking calls to the services under test, each with a deadline.
class Api {
 public:
  explicit Api(ServerForTest* server) : server_(server) {}

  grpc::Status Resolve(const v1::ResolveRequest& r, v1::ResolveResponse* out = nullptr) {
    return Unary(server_->identity(), &v1::IdentityService::Stub::Resolve, r, out);
  }
  grpc::Status Link(const v1::LinkRequest& r) {
    return Unary<v1::LinkResponse>(server_->identity(), &v1::IdentityService::Stub::Link, r);
  }
  grpc::Status Unlink(const v1::UnlinkRequest& r) {
    return Unary<v1::UnlinkResponse>(server_->identity(), &v1::IdentityService::Stub::Unlink, r);
  }
  grpc::Status GetProfile(const v1::GetProfileRequest& r, v1::GetProfileResponse* out = nullptr) {
    return Unary(server_->identity(), &v1::IdentityService::Stub::GetProfile, r, out);
  }
  grpc::Status UpdateProfile(const v1::UpdateProfileRequest& r) {
    return Unary<v1::UpdateProfileResponse>(server_->identity(),
                                            &v1::IdentityService::Stub::UpdateProfile, r);
  }
  grpc::Status Append(const v1::AppendRequest& r, v1::AppendResponse* out = nullptr) {
    return Unary(server_->timeline(), &v1::TimelineService::Stub::Append, r, out);
  }
  grpc::Status List(const v1::ListRequest& r, v1::ListResponse* out = nullptr) {
    return Unary(server_->timeline(), &v1::TimelineService::Stub::List, r, out);
  }
  grpc::Status Merge(const v1::MergeRequest& r, v1::MergeResponse* out = nullptr) {
    return Unary(server_->identity(), &v1::IdentityService::Stub::Merge, r, out);
  }
  grpc::Status Unmerge(const v1::UnmergeRequest& r, v1::UnmergeResponse* out = nullptr) {
    return Unary(server_->identity(), &v1::IdentityService::Stub::Unmerge, r, out);
  }
  grpc::Status GetMergeHistory(const v1::GetMergeHistoryRequest& r,
                               v1::GetMergeHistoryResponse* out = nullptr) {
    return Unary(server_->identity(), &v1::IdentityService::Stub::GetMergeHistory, r, out);
  }
  grpc::Status SuggestMerges(const v1::SuggestMergesRequest& r) {
    return Unary<v1::SuggestMergesResponse>(server_->identity(),
                                            &v1::IdentityService::Stub::SuggestMerges, r);
  }
  grpc::Status GetContext(const v1::GetContextRequest& r) {
    return Unary<v1::GetContextResponse>(server_->context(), &v1::ContextService::Stub::GetContext,
                                         r);
  }
  grpc::Status StartConversation(const v1::StartConversationRequest& r) {
    return Unary<v1::StartConversationResponse>(
        server_->conversations(), &v1::ConversationService::Stub::StartConversation, r);
  }
  grpc::Status Handoff(const v1::HandoffRequest& r) {
    return Unary<v1::HandoffResponse>(server_->conversations(),
                                      &v1::ConversationService::Stub::Handoff, r);
  }
  grpc::Status EndConversation(const v1::EndConversationRequest& r) {
    return Unary<v1::EndConversationResponse>(server_->conversations(),
                                              &v1::ConversationService::Stub::EndConversation, r);
  }
  grpc::Status RecordFacts(const v1::RecordFactsRequest& r) {
    return Unary<v1::RecordFactsResponse>(server_->conversations(),
                                          &v1::ConversationService::Stub::RecordFacts, r);
  }
  grpc::Status OpenCase(const v1::OpenCaseRequest& r) {
    return Unary<v1::OpenCaseResponse>(server_->cases(), &v1::CaseService::Stub::OpenCase, r);
  }
  grpc::Status UpdateCase(const v1::UpdateCaseRequest& r) {
    return Unary<v1::UpdateCaseResponse>(server_->cases(), &v1::CaseService::Stub::UpdateCase, r);
  }
  grpc::Status ResolveCase(const v1::ResolveCaseRequest& r) {
    return Unary<v1::ResolveCaseResponse>(server_->cases(), &v1::CaseService::Stub::ResolveCase, r);
  }
  grpc::Status GetCase(const v1::GetCaseRequest& r) {
    return Unary<v1::Case>(server_->cases(), &v1::CaseService::Stub::GetCase, r);
  }
  grpc::Status SetJourney(const v1::SetJourneyRequest& r) {
    return Unary<v1::Journey>(server_->cases(), &v1::CaseService::Stub::SetJourney, r);
  }
  grpc::Status GetJourney(const v1::GetJourneyRequest& r) {
    return Unary<v1::Journey>(server_->cases(), &v1::CaseService::Stub::GetJourney, r);
  }
  grpc::Status GetJourneyStats(const v1::GetJourneyStatsRequest& r) {
    return Unary<v1::GetJourneyStatsResponse>(server_->cases(),
                                              &v1::CaseService::Stub::GetJourneyStats, r);
  }
  grpc::Status ListAlerts(const v1::ListAlertsRequest& r, v1::ListAlertsResponse* out = nullptr) {
    return Unary(server_->alerts(), &v1::AlertService::Stub::ListAlerts, r, out);
  }
  grpc::Status AckAlert(const v1::AckAlertRequest& r) {
    return Unary<v1::Alert>(server_->alerts(), &v1::AlertService::Stub::AckAlert, r);
  }

  grpc::Status EraseCustomer(const v1::EraseCustomerRequest& r) {
    return Unary<v1::EraseCustomerResponse>(server_->privacy(),
                                            &v1::PrivacyService::Stub::EraseCustomer, r);
  }

  // As Watch: a rejected alert watch must deliver no alert.
  grpc::Status WatchAlerts(const v1::WatchAlertsRequest& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    std::unique_ptr<grpc::ClientReader<v1::Alert>> reader = server_->alerts()->WatchAlerts(&ctx, r);
    v1::Alert alert;
    int received = 0;
    while (reader->Read(&alert)) ++received;
    EXPECT_EQ(received, 0) << "a rejected alert watch delivered alerts";
    return reader->Finish();
  }

  // Opens a watch and reads it to its end; a rejected watch must deliver no event.
  grpc::Status Watch(const v1::WatchRequest& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader =
        server_->timeline()->Watch(&ctx, r);
    v1::WatchResponse response;
    int received = 0;
    while (reader->Read(&response)) ++received;
    EXPECT_EQ(received, 0) << "a rejected watch delivered events";
    return reader->Finish();
  }

  // A unary call with a hand-made request body, past the client's protobuf serializer.
  // method: "/onestory.v1.TimelineService/Append".
  grpc::Status RawUnary(const std::string& method, const std::string& request_bytes) {
    grpc::GenericStub stub(server_->channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                   [&done](grpc::Status st) { done.set_value(std::move(st)); });
    return done.get_future().get();
  }

 private:
  template <typename Response, typename Stub, typename Request>
  grpc::Status Unary(Stub* stub,
                     grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
                     const Request& request, Response* response = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    Response ignored;
    return (stub->*rpc)(&ctx, request, response != nullptr ? response : &ignored);
  }

  ServerForTest* server_;
};

// The valid state every case starts from.
struct State {
  std::string tenant;
  std::string customer;    // owns kCustomerPhone; events ev-1, ev-2, ev-3
  std::string other;       // owns kOtherEmail; event ev-1
  std::string cursor;      // the cursor of customer's ev-1
  std::string page_token;  // from List(customer, page_size 1), newest first, no filters
};

// Request builders -------------------------------------------------------------------------------

v1::CustomerRef RefId(const std::string& customer_id);
v1::CustomerRef RefIdent(v1::IdentifierType type, const std::string& value);
google::protobuf::Timestamp At(absl::Time t);
v1::Event ValidEvent(const std::string& event_id = "");
v1::ResolveRequest ResolveOf(const std::string& tenant, v1::IdentifierType type,
                             const std::string& value, bool create);
v1::LinkRequest LinkOf(const State& s, v1::IdentifierType type, const std::string& value);
v1::UnlinkRequest UnlinkOf(const State& s, v1::IdentifierType type, const std::string& value);
v1::GetProfileRequest ProfileOf(const State& s, v1::CustomerRef ref);
v1::UpdateProfileRequest UpdateOf(const State& s, const std::vector<std::string>& paths);
// An append of `count` valid events to s.customer; `mutate` then spoils the request.
v1::AppendRequest AppendOf(const State& s, int count = 1);
v1::AppendRequest AppendWith(const State& s, const std::function<void(v1::Event&)>& spoil);
v1::ListRequest ListOf(const State& s);
v1::WatchRequest WatchOf(const State& s);
v1::GetContextRequest ContextOf(const State& s);
v1::Actor ActorOf(v1::Actor::Type type, const std::string& id);
// A valid merge of s.customer (source) into s.other (target), by an agent.
v1::MergeRequest MergeOf(const State& s);
v1::MergeRequest MergeOf(const std::string& tenant, const std::string& source,
                         const std::string& target);
v1::UnmergeRequest UnmergeOf(const State& s, const std::string& merge_id);
v1::GetMergeHistoryRequest HistoryOf(const State& s, const std::string& customer_id);
v1::SuggestMergesRequest SuggestOf(const State& s);

// Set-up steps for the merge cases (in `prepare`) and read-only look-ups (in `send`).

// Merges `source` into `target`; returns the merge id ("" after a failed assertion).
std::string MergeForSetup(Api& api, const std::string& tenant, const std::string& source,
                          const std::string& target);
// A customer that owns `value` as its CRM id in `tenant`, created by `prepare`.
void CreateCrmCustomer(Api& api, const std::string& tenant, const std::string& value);
// Looks the CRM customer up again, without creating anything.
std::string CrmCustomer(Api& api, const std::string& tenant, const std::string& value);
// Erases `customer_id` (PrivacyService.EraseCustomer).
void EraseForSetup(Api& api, const State& s, const std::string& customer_id);
// The newest merge `customer_id` took part in, read from its history.
std::string NewestMergeId(Api& api, const State& s, const std::string& customer_id);

// Engagement requests: each is valid as built (BadInputTest.EngagementRequestsAsBuiltAreValid
// proves it) once the state it names was set up, and each case spoils one thing.

inline constexpr char kConversation[] =
    "chat-9";                              // of State::customer, served by kBot; by `prepare`
inline constexpr char kCase[] = "case-1";  // of State::customer; by `prepare`
inline constexpr char kBot[] = "bot-1";
inline constexpr char kUnknownConversation[] = "chat-nobody";
inline constexpr char kUnknownCase[] = "case-nobody";
inline constexpr char kUnknownAlert[] = "negative_streak:cus_nobody:1-0";

// The journey `prepare` sets: cases open in its first stage.
std::vector<std::string> JourneyStages();

// A collected value, with nothing else to check.
v1::Fact CollectedFact(const std::string& name, const std::string& value);
v1::StartConversationRequest StartOf(const State& s, const std::string& conversation_id);
// Hands kConversation from kBot to agent-7 on the phone, with one collected value.
v1::HandoffRequest HandoffOf(const State& s);
v1::EndConversationRequest EndOf(const State& s);
// `count` collected values fact-0, fact-1, ... stated by kBot.
v1::RecordFactsRequest FactsOf(const State& s, int count = 1);
v1::OpenCaseRequest OpenCaseOf(const State& s, const std::string& case_id);
// A note on kCase.
v1::UpdateCaseRequest UpdateCaseOf(const State& s);
v1::ResolveCaseRequest ResolveCaseOf(const State& s);
v1::GetCaseRequest GetCaseOf(const State& s);
v1::SetJourneyRequest JourneyOf(const State& s, const std::vector<std::string>& stages);
v1::ListAlertsRequest ListAlertsOf(const State& s);
v1::AckAlertRequest AckOf(const State& s, const std::string& alert_id);
v1::WatchAlertsRequest WatchAlertsOf(const State& s);

// Set-up steps for the engagement cases (in `prepare`) and read-only look-ups (in `send`).

// Starts `conversation_id` for s.customer, served by kBot.
void StartForSetup(Api& api, const State& s, const std::string& conversation_id);
// Starts kConversation and ends it.
void EndedConversationForSetup(Api& api, const State& s);
void JourneyForSetup(Api& api, const State& s);
// Opens `case_id` for s.customer, owned by agent-7, in `stage` ("": the journey's first).
void OpenCaseForSetup(Api& api, const State& s, const std::string& case_id,
                      const std::string& stage = "");
// Opens kCase and resolves it.
void ResolvedCaseForSetup(Api& api, const State& s);
// Two NEGATIVE_STREAK alerts: three negative events in a row for each of s.customer and s.other.
void AlertsForSetup(Api& api, const State& s);
// The newest alert of s.tenant.
v1::Alert NewestAlert(Api& api, const State& s);
// The token of the second page of open alerts, one alert a page.
std::string AlertsPageToken(Api& api, const State& s);

// Creates the starting state in `tenant`.
void MakeState(Api& api, const std::string& tenant, State* s);

// Which keys a request added, removed or changed.
std::string DescribeChanges(const std::map<std::string, std::string>& before,
                            const std::map<std::string, std::string>& after);

// The catalogue ----------------------------------------------------------------------------------

struct BadInputCase {
  std::string name;  // also the case's tenant: [A-Za-z0-9], at most 64 characters
  grpc::StatusCode code;
  // Substrings of the error message; "$customer" and "$other" stand for State's customer ids.
  std::vector<std::string> message_names;
  std::function<grpc::Status(Api&, const State&)> send;
  // Extra valid state the case needs beyond MakeState.
  std::function<void(Api&, const State&)> prepare = nullptr;
};

void PrintTo(const BadInputCase& c, std::ostream* os);

// The parts one after the other.
std::vector<BadInputCase> Concat(const std::vector<std::vector<BadInputCase>>& parts);

using Code = grpc::StatusCode;
inline constexpr Code kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
inline constexpr Code kNotFound = grpc::StatusCode::NOT_FOUND;
inline constexpr Code kPrecondition = grpc::StatusCode::FAILED_PRECONDITION;

// Fixtures ---------------------------------------------------------------------------------------

// One redis-server and one in-process server for a test suite.
class ServicesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_ = new RedisForTest();
    server_ = new ServerForTest(*redis_);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete redis_;
    redis_ = nullptr;
  }

  // Starts from an empty Redis and the usual state in `tenant`.
  void Reset(const std::string& tenant, State* s) {
    redis_->FlushAll();
    ASSERT_NO_FATAL_FAILURE(MakeState(api_, tenant, s));
  }

  void ExpectUnchanged(const std::map<std::string, std::string>& before) {
    std::map<std::string, std::string> after = redis_->Snapshot();
    EXPECT_TRUE(after == before) << "the rejected request changed Redis:"
                                 << DescribeChanges(before, after);
  }

  static RedisForTest* redis_;
  static ServerForTest* server_;
  Api api_{server_};
};

}  // namespace onestory::testing::bad_input
