// PrivacyService over real gRPC against a real redis-server: EraseCustomer removes every key of
// the customer and of the customers merged into it (a SCAN of the whole keyspace finds only
// their tombstones), their identifier index entries, alerts, journey, due-promise and activity
// entries; nothing racing with an erase brings the customer back; an erase interrupted at any
// step is finished by a retry or by RecoverPending; merges into or from an erased customer are
// refused. ExportCustomer streams every section and every event in order. RedactEvent replaces
// one event's text everywhere in Redis (DUMP scan with compression off) and keeps cursors
// valid. Consent DENIED on a channel refuses its events and changes nothing.
//
// The suite serves PrivacyService from a server of its own (with Authenticator::AllowAll and a
// failpoint) beside the engagement fixture's ServerForTest, on the same Redis.
#include "services/privacy/privacy_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/privacy/privacy_store.h"
#include "services/common/auth.h"
#include "tests/integration/services/engagement/engagement_fixture.h"
#include "tests/testing/await.h"

namespace onestory::testing {
namespace {

using ::testing::HasSubstr;

class PrivacyServiceTest : public EngagementFixture {
 protected:
  static void SetUpTestSuite() {
    EngagementFixture::SetUpTestSuite();
    // Deleted stream entries stay inside their node: with compression off, DUMP shows any
    // text left behind.
    redis()->Run({"CONFIG", "SET", "rdbcompression", "no"});
    identity_ = new identity::IdentityStore(server()->server()->redis());
    store_ = new privacy::PrivacyStore(server()->server()->redis(), identity_,
                                       [](const std::string& step) {
                                         absl::MutexLock lock(&fail_mu_);
                                         if (observe_) observe_(step);
                                         return step == fail_at_ && ++fail_seen_ >= fail_nth_;
                                       });
    auth_ = service::Authenticator::AllowAll().release();
    service_ = new service::PrivacyServiceImpl(store_, auth_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_);
    privacy_server_ = builder.BuildAndStart().release();
    stub_ = v1::PrivacyService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                            grpc::InsecureChannelCredentials()))
                .release();
  }
  static void TearDownTestSuite() {
    privacy_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    delete stub_;
    delete privacy_server_;
    delete service_;
    delete auth_;
    delete store_;
    delete identity_;
    EngagementFixture::TearDownTestSuite();
  }
  void TearDown() override {
    FailAt("");
    Observe(nullptr);
  }

  // Stops runs at `step` from its `nth` occurrence on.
  static void FailAt(const std::string& step, int nth = 1) {
    absl::MutexLock lock(&fail_mu_);
    fail_at_ = step;
    fail_nth_ = nth;
    fail_seen_ = 0;
  }
  // Called with every step's name before it runs (on the Redis loop thread).
  static void Observe(std::function<void(const std::string&)> observe) {
    absl::MutexLock lock(&fail_mu_);
    observe_ = std::move(observe);
  }

  // ---- calls ----------------------------------------------------------------------------------

  grpc::Status Erase(const v1::CustomerRef& ref, v1::EraseCustomerResponse* resp,
                     const std::string& reason = "ticket 4711") {
    v1::EraseCustomerRequest req;
    req.set_tenant(tenant());
    *req.mutable_customer() = ref;
    req.set_reason(reason);
    return stub_->EraseCustomer(Ctx(absl::Seconds(30)).get(), req, resp);
  }
  v1::EraseCustomerResponse EraseOk(const std::string& customer) {
    v1::EraseCustomerResponse resp;
    grpc::Status st = Erase(Ref(customer), &resp);
    EXPECT_TRUE(st.ok()) << "EraseCustomer: " << Describe(st);
    return resp;
  }
  grpc::Status Redact(const std::string& customer, const std::string& event_id,
                      const std::string& summary, const std::string& body,
                      v1::RedactEventResponse* resp, const std::string& reason = "GDPR art. 16",
                      absl::Duration timeout = absl::Seconds(10)) {
    v1::RedactEventRequest req;
    req.set_tenant(tenant());
    *req.mutable_customer() = Ref(customer);
    req.set_event_id(event_id);
    req.set_summary(summary);
    req.set_body(body);
    req.set_reason(reason);
    return stub_->RedactEvent(Ctx(timeout).get(), req, resp);
  }
  // The customer's timeline as stored: (stream id, event id) of every entry, oldest first.
  std::vector<std::pair<std::string, std::string>> StreamEntries(const std::string& customer) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string key = keys::CustomerKeys(tenant(), customer).timeline();
    std::string start = "-";
    while (true) {
      redis::Reply r = redis()->Run({"XRANGE", key, start, "+", "COUNT", "200"});
      for (const auto& e : r.elements) {
        v1::Event ev;
        for (size_t i = 0; i + 1 < e.elements[1].elements.size(); i += 2) {
          if (e.elements[1].elements[i].str == "e") {
            EXPECT_TRUE(ev.ParseFromString(e.elements[1].elements[i + 1].str));
          }
        }
        out.emplace_back(e.elements[0].str, ev.event_id());
      }
      if (r.elements.size() < 200) break;
      start = absl::StrCat("(", r.elements.back().elements[0].str);
    }
    return out;
  }
  // Every document of an export, as JSON text; the call's status in *status.
  std::vector<std::string> Export(const v1::CustomerRef& ref, grpc::Status* status) {
    v1::ExportCustomerRequest req;
    req.set_tenant(tenant());
    *req.mutable_customer() = ref;
    auto ctx = Ctx(absl::Seconds(30));
    auto reader = stub_->ExportCustomer(ctx.get(), req);
    std::vector<std::string> docs;
    v1::ExportCustomerChunk chunk;
    while (reader->Read(&chunk)) docs.push_back(chunk.json());
    *status = reader->Finish();
    return docs;
  }
  static google::protobuf::Struct Parse(const std::string& json) {
    google::protobuf::Struct s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
    return s;
  }

  v1::CustomerRef PhoneRef(const std::string& phone) const {
    v1::CustomerRef ref;
    *ref.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, phone);
    return ref;
  }
  grpc::Status Link(const std::string& customer, const v1::Identifier& id) {
    v1::LinkRequest req;
    req.set_tenant(tenant());
    req.set_customer_id(customer);
    *req.mutable_identifier() = id;
    v1::LinkResponse resp;
    return server()->identity()->Link(Ctx().get(), req, &resp);
  }
  grpc::Status Merge(const std::string& source, const std::string& target,
                     v1::MergeResponse* resp = nullptr) {
    v1::MergeRequest req;
    req.set_tenant(tenant());
    req.set_source_customer_id(source);
    req.set_target_customer_id(target);
    req.set_reason("same person: verified by phone");
    *req.mutable_actor() = Agent("agent-7");
    v1::MergeResponse ignored;
    return server()->identity()->Merge(Ctx(absl::Seconds(30)).get(), req, resp ? resp : &ignored);
  }
  grpc::Status Append(const v1::CustomerRef& ref, std::vector<v1::Event> events,
                      bool create_if_missing = false, v1::AppendResponse* out = nullptr) {
    v1::AppendRequest req;
    req.set_tenant(tenant());
    *req.mutable_customer() = ref;
    req.set_create_if_missing(create_if_missing);
    for (auto& e : events) *req.add_events() = std::move(e);
    v1::AppendResponse ignored;
    return server()->timeline()->Append(Ctx().get(), req, out ? out : &ignored);
  }
  grpc::Status SetConsent(const std::string& customer, v1::Channel channel,
                          v1::ConsentState state) {
    v1::UpdateProfileRequest req;
    req.set_tenant(tenant());
    req.set_customer_id(customer);
    v1::ChannelConsent* c = req.mutable_profile()->add_consents();
    c->set_channel(channel);
    c->set_state(state);
    req.mutable_update_mask()->add_paths("consents");
    v1::UpdateProfileResponse resp;
    return server()->identity()->UpdateProfile(Ctx().get(), req, &resp);
  }

  // ---- looking at Redis -------------------------------------------------------------------------

  // The tenant's keys with their DUMP, but for the audit log (which records refused calls too).
  std::map<std::string, std::string> StateSnapshot() {
    std::map<std::string, std::string> all = TenantSnapshot();
    for (int b = 0; b < keys::kTenantBuckets; ++b) {
      all.erase(keys::TenantKeys(tenant(), b).audit_log());
    }
    return all;
  }

  // Every key (on a cluster, of every primary: RedisForTest::Run sends KEYS to each).
  std::vector<std::string> AllKeys() {
    std::vector<std::string> keys;
    for (const auto& k : redis()->Run({"KEYS", "*"}).elements) keys.push_back(k.str);
    return keys;
  }
  // Keys whose name holds `text`.
  std::vector<std::string> KeysNaming(const std::string& text) {
    std::vector<std::string> out;
    for (const std::string& k : AllKeys()) {
      if (absl::StrContains(k, text)) out.push_back(k);
    }
    return out;
  }
  // Keys whose serialized value (DUMP, uncompressed: deleted stream entries included) holds
  // `text`.
  std::vector<std::string> KeysHolding(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& [k, dump] : redis()->Snapshot()) {
      if (absl::StrContains(dump, text)) out.push_back(k);
    }
    return out;
  }
  // The identifier index keys of this tenant whose owner is `customer`.
  std::vector<std::string> IndexEntriesOf(const std::string& customer) {
    std::vector<std::string> out;
    for (const std::string& k : AllKeys()) {
      if (!absl::StartsWith(k, absl::StrCat("os:{", tenant(), ":i:"))) continue;
      redis::Reply r = redis()->Run({"GET", k});
      if (r.is_string() && r.str == customer) out.push_back(k);
    }
    return out;
  }
  // Asserts the customer is gone but for its tombstone.
  void ExpectErased(const std::string& customer) {
    std::string tombstone = keys::CustomerKeys(tenant(), customer).profile();
    EXPECT_THAT(KeysNaming(customer), ::testing::ElementsAre(tombstone)) << customer;
    redis::Reply p = redis()->Run({"HGETALL", tombstone});
    ASSERT_EQ(p.elements.size(), 2u) << customer;
    EXPECT_EQ(p.elements[0].str, "erased_at");
    EXPECT_THAT(IndexEntriesOf(customer), ::testing::IsEmpty()) << customer;
    v1::GetContextResponse ctx;
    grpc::Status st = GetContext(customer, v1::AUDIENCE_SUPERVISOR, 0, &ctx);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
    EXPECT_THAT(st.error_message(), HasSubstr("was erased"));
  }
  // Nothing in the tenant-wide keys names the customer.
  void ExpectNoTenantEntries(const std::string& customer) {
    for (int b = 0; b < keys::kTenantBuckets; ++b) {
      keys::TenantKeys tk(tenant(), b);
      for (const auto& e : redis()->Run({"XRANGE", tk.alert_log(), "-", "+"}).elements) {
        for (const auto& f : e.elements[1].elements) EXPECT_NE(f.str, customer) << "alert log";
      }
      for (const std::string& key : {tk.alert_ids(), tk.alert_acks()}) {
        for (const auto& f : redis()->Run({"HKEYS", key}).elements) {
          EXPECT_THAT(f.str, ::testing::Not(HasSubstr(customer))) << key;
        }
      }
    }
    for (const std::string& key : AllKeys()) {
      std::string type = redis()->Run({"TYPE", key}).str;
      // Every bucket ("os:{<tenant>:j:3}") and the layout before buckets ("os:{<tenant>:j}").
      bool tenant_wide = absl::StartsWith(key, absl::StrCat("os:{", tenant(), ":a")) ||
                         absl::StartsWith(key, absl::StrCat("os:{", tenant(), ":j")) ||
                         absl::StartsWith(key, absl::StrCat("os:{", tenant(), ":r")) ||
                         absl::StartsWith(key, "os:{due:") || key == keys::DuePromisesKey();
      if (!tenant_wide || type != "zset") continue;
      for (const auto& m : redis()->Run({"ZRANGE", key, "0", "-1"}).elements) {
        EXPECT_THAT(m.str, ::testing::Not(HasSubstr(customer))) << key;
      }
    }
  }

  // A customer with something in every kind of key: identifiers, events (a negative streak
  // raises an alert, acknowledged), a conversation, facts, a case in a journey stage with a
  // promise due (and one overdue, which raises an alert quoting it), contacts and signals.
  // `secret` is written into events, facts, the profile and the promises.
  std::string Seed(const std::string& phone, const std::string& email, const std::string& secret) {
    if (JourneyStages().empty()) {
      EXPECT_TRUE(SetJourney({"triage", "fixing"}).ok());
    }
    std::string c = NewCustomer(phone);
    EXPECT_TRUE(Link(c, Id(v1::IDENTIFIER_TYPE_EMAIL, email)).ok());
    v1::UpdateProfileRequest up;
    up.set_tenant(tenant());
    up.set_customer_id(c);
    up.mutable_profile()->set_display_name(absl::StrCat("Ann ", secret));
    // An attribute the merge suggestion index keeps a set for, named by its value.
    (*up.mutable_profile()->mutable_attributes())["email"] =
        absl::StrCat(absl::AsciiStrToLower(secret), "@example.com");
    up.mutable_update_mask()->add_paths("display_name");
    up.mutable_update_mask()->add_paths("attributes.email");
    v1::UpdateProfileResponse upr;
    EXPECT_TRUE(server()->identity()->UpdateProfile(Ctx().get(), up, &upr).ok());
    for (int i = 0; i < 3; ++i) {
      v1::Event e = Message(absl::StrCat(c, "-angry-", i), v1::CHANNEL_WEB_CHAT, -0.9f, "conv-1");
      e.set_body(absl::StrCat("my order ", secret, " is late"));
      AppendOk(c, {e});
    }
    StartOk(StartReq(c, "conv-2", v1::CHANNEL_CHATBOT, Bot("bot-1")));
    RecordFactsOk(FactsReq(c, {Collected("order_number", secret)}));
    OpenCaseOk(OpenReq(c, "case-1", absl::StrCat("order ", secret)));
    v1::UpdateCaseRequest later = UpdateReq(c, "case-1");
    later.set_promise(absl::StrCat("refund ", secret));
    *later.mutable_promised_by() = FromNow(absl::Hours(48));
    UpdateCaseOk(later);
    OpenCaseOk(OpenReq(c, "case-2", "second order"));
    v1::UpdateCaseRequest soon = UpdateReq(c, "case-2");
    soon.set_promise(absl::StrCat("callback ", secret));
    *soon.mutable_promised_by() = FromNow(absl::Milliseconds(700));
    UpdateCaseOk(soon);
    EXPECT_TRUE(Eventually([&] {
      int mine = 0;
      for (const auto& a : Alerts()) mine += a.customer_id() == c ? 1 : 0;
      return mine >= 2;  // the negative streak and the overdue promise
    }));
    for (const auto& a : Alerts()) {
      if (a.customer_id() == c && a.kind() == v1::ALERT_KIND_NEGATIVE_STREAK) {
        v1::Alert acked;
        EXPECT_TRUE(AckAlert(a.alert_id(), Agent("agent-1"), &acked).ok());
      }
    }
    return c;
  }

  static inline identity::IdentityStore* identity_ = nullptr;
  static inline privacy::PrivacyStore* store_ = nullptr;
  static inline service::Authenticator* auth_ = nullptr;
  static inline service::PrivacyServiceImpl* service_ = nullptr;
  static inline grpc::Server* privacy_server_ = nullptr;
  static inline v1::PrivacyService::Stub* stub_ = nullptr;
  static inline absl::Mutex fail_mu_;
  static inline std::string fail_at_;
  static inline int fail_nth_ = 1;
  static inline int fail_seen_ = 0;
  static inline std::function<void(const std::string&)> observe_;
};

// ---- erase ------------------------------------------------------------------------------------

TEST_F(PrivacyServiceTest, EraseRemovesEveryKeyAndEntryOfTheCustomer) {
  std::string secret = "qx7Secret-EraseAll";
  std::string c = Seed("14155550101", "ann@example.com", secret);
  std::string other = Seed("14155550102", "bob@example.com", "OtherCustomerText");
  ASSERT_THAT(KeysHolding(secret), ::testing::Not(::testing::IsEmpty()));
  ASSERT_THAT(KeysNaming(absl::AsciiStrToLower(secret)), ::testing::Not(::testing::IsEmpty()));
  int64_t events = static_cast<int64_t>(Timeline(c, v1::AUDIENCE_SUPERVISOR).size());

  v1::EraseCustomerResponse resp = EraseOk(c);
  EXPECT_EQ(resp.customer_id(), c);
  EXPECT_FALSE(resp.already_erased());
  EXPECT_EQ(resp.events_erased(), events);
  EXPECT_EQ(resp.identifiers_erased(), 2);
  EXPECT_THAT(resp.merged_customer_ids(), ::testing::IsEmpty());

  ExpectErased(c);
  ExpectNoTenantEntries(c);
  // Not a byte of what the customer told us is left anywhere, deleted stream entries included.
  EXPECT_THAT(KeysHolding(secret), ::testing::IsEmpty());
  EXPECT_THAT(KeysNaming(absl::AsciiStrToLower(secret)), ::testing::IsEmpty());
  EXPECT_THAT(KeysHolding("14155550101"), ::testing::IsEmpty());
  EXPECT_THAT(KeysHolding("ann@example.com"), ::testing::IsEmpty());
  EXPECT_EQ(redis()->Run({"HLEN", keys::PendingErasuresKey()}).integer, 0);

  // The other customer is untouched.
  EXPECT_EQ(ContextOk(other).profile().identifiers_size(), 2);
  EXPECT_THAT(KeysHolding("OtherCustomerText"), ::testing::Not(::testing::IsEmpty()));
  int others_alerts = 0;
  for (const auto& a : Alerts()) others_alerts += a.customer_id() == other ? 1 : 0;
  EXPECT_EQ(others_alerts, 2);

  // Every call naming it is NOT_FOUND; its identifiers are unknown.
  grpc::Status st = Append(Ref(c), {Message("after")});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  st = Link(c, Id(v1::IDENTIFIER_TYPE_EMAIL, "new@example.com"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  v1::ResolveRequest rr;
  rr.set_tenant(tenant());
  *rr.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, "14155550101");
  v1::ResolveResponse rresp;
  EXPECT_EQ(server()->identity()->Resolve(Ctx().get(), rr, &rresp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::EraseCustomerResponse by_phone;
  EXPECT_EQ(Erase(PhoneRef("14155550101"), &by_phone).error_code(), grpc::StatusCode::NOT_FOUND);
  ExpectErased(c);
}

// The tenant's open-case index (keys::TenantKeys::journey_open, libs/engagement/lua/journey.lua):
// one member per open case in a stage, "<stage>|<entered ms, 15 digits>|<customer>|<case>", in
// the bucket of the customer it names, built here from the case records as the journey helper
// builds it.
TEST_F(PrivacyServiceTest, EraseRemovesTheCustomersEntriesFromTheOpenCaseIndex) {
  std::string c = Seed("14155550131", "cat@example.com", "qx7Secret-Journey");
  std::string other = Seed("14155550132", "dan@example.com", "OtherJourneyText");
  auto open = [&](const std::string& customer) {
    return keys::TenantKeys(tenant(), keys::TenantBucket(customer)).journey_open();
  };
  auto index = [&](const std::string& customer) {
    int added = 0;
    const redis::Reply cases =
        redis()->Run({"HGETALL", keys::CustomerKeys(tenant(), customer).cases()});
    for (size_t i = 0; i + 1 < cases.elements.size(); i += 2) {
      google::protobuf::Struct rec = Parse(cases.elements[i + 1].str);
      const std::string stage = rec.fields().at("sg").string_value();
      if (stage.empty() || rec.fields().at("s").string_value() != "o") continue;
      redis()->Run({"ZADD", open(customer), "0",
                    absl::StrFormat("%s|%015d|%s|%s", stage,
                                    static_cast<int64_t>(rec.fields().at("se").number_value()),
                                    customer, cases.elements[i].str)});
      ++added;
    }
    return added;
  };
  auto members = [&] {
    std::set<std::string> out;
    for (int b = 0; b < keys::kTenantBuckets; ++b) {
      for (const auto& m :
           redis()
               ->Run({"ZRANGE", keys::TenantKeys(tenant(), b).journey_open(), "0", "-1"})
               .elements) {
        out.insert(m.str);
      }
    }
    return out;
  };
  ASSERT_GT(index(c), 0);
  ASSERT_GT(index(other), 0);
  std::set<std::string> others_entries;
  for (const std::string& m : members()) {
    if (absl::StrContains(m, absl::StrCat("|", other, "|"))) others_entries.insert(m);
  }

  EraseOk(c);
  EXPECT_EQ(members(), others_entries);
}

TEST_F(PrivacyServiceTest, ErasingAnErasedCustomerAnswersAlreadyErased) {
  std::string c = NewCustomer("14155550111");
  AppendOk(c, {Message("m1")});
  EXPECT_FALSE(EraseOk(c).already_erased());
  auto before = StateSnapshot();
  v1::EraseCustomerResponse again = EraseOk(c);
  EXPECT_TRUE(again.already_erased());
  EXPECT_EQ(again.customer_id(), c);
  EXPECT_EQ(StateSnapshot(), before);
}

TEST_F(PrivacyServiceTest, EraseByIdentifierErasesItsOwner) {
  std::string c = NewCustomer("14155550121");
  AppendOk(c, {Message("m1")});
  v1::EraseCustomerResponse resp;
  grpc::Status st = Erase(PhoneRef("+1 (415) 555-0121"), &resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(resp.customer_id(), c);
  ExpectErased(c);
}

TEST_F(PrivacyServiceTest, BadRequestsAreRefusedAndChangeNothing) {
  std::string c = NewCustomer("14155550131");
  AppendOk(c, {Message("m1")});
  auto before = StateSnapshot();
  v1::EraseCustomerResponse resp;
  grpc::Status st = Erase(Ref(c), &resp, std::string(201, 'r'));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("reason"));
  st = Erase(Ref("bad:id"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("customer"));
  st = Erase(v1::CustomerRef(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("customer"));
  v1::EraseCustomerRequest bad_tenant;
  bad_tenant.set_tenant("no tenant");
  *bad_tenant.mutable_customer() = Ref(c);
  st = stub_->EraseCustomer(Ctx().get(), bad_tenant, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("tenant"));
  st = Erase(Ref("cus_nobody"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  st = Erase(PhoneRef("14155550139"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);

  v1::RedactEventResponse rresp;
  st = Redact(c, "", "x", "", &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("event_id"));
  st = Redact(c, "m1", std::string(1025, 's'), "", &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("summary"));
  st = Redact(c, "m1", "", std::string(64 * 1024 + 1, 'b'), &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("body"));
  st = Redact(c, "m1", "bad \x01 text", "", &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("summary"));
  st = Redact(c, "m1", "", "", &rresp, std::string(201, 'r'));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("reason"));
  st = Redact(c, "no-such-event", "", "", &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("event_id"));
  st = Redact("cus_nobody", "m1", "", "", &rresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(StateSnapshot(), before);
  EXPECT_EQ(redis()->Run({"HLEN", keys::PendingErasuresKey()}).integer, 0);
}

TEST_F(PrivacyServiceTest, EraseIsRefusedWhileAMergeHoldsTheCustomer) {
  std::string c = NewCustomer("14155550141");
  AppendOk(c, {Message("m1")});
  redis()->Run({"HSET", keys::CustomerKeys(tenant(), c).profile(), "merge_lock", "mrg_x"});
  auto before = StateSnapshot();
  v1::EraseCustomerResponse resp;
  grpc::Status st = Erase(Ref(c), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED) << Describe(st);
  EXPECT_EQ(StateSnapshot(), before);
  EXPECT_EQ(redis()->Run({"HLEN", keys::PendingErasuresKey()}).integer, 0);
  redis()->Run({"HDEL", keys::CustomerKeys(tenant(), c).profile(), "merge_lock"});
  EraseOk(c);
  ExpectErased(c);
}

TEST_F(PrivacyServiceTest, EraseTakesTheCustomersMergedIntoIt) {
  std::string a = Seed("14155550151", "a@example.com", "qx7SecretOfA");
  std::string b = Seed("14155550152", "b@example.com", "qx7SecretOfB");
  std::string c = NewCustomer("14155550153");  // merged into b, then unmerged: another person
  AppendOk(c, {Message(absl::StrCat(c, "-own"))});
  std::string d = NewCustomer("14155550154");  // merged into a: erased with it, two levels down
  AppendOk(d, {Message(absl::StrCat(d, "-own"))});
  ASSERT_TRUE(Merge(d, a).ok());
  ASSERT_TRUE(Merge(a, b).ok());
  v1::MergeResponse cm;
  ASSERT_TRUE(Merge(c, b, &cm).ok());
  v1::UnmergeRequest ureq;
  ureq.set_tenant(tenant());
  ureq.set_merge_id(cm.merge().merge_id());
  ureq.set_reason("not the same person");
  *ureq.mutable_actor() = Agent("agent-7");
  v1::UnmergeResponse uresp;
  ASSERT_TRUE(server()->identity()->Unmerge(Ctx(absl::Seconds(30)).get(), ureq, &uresp).ok());

  // Named by the merged customer: the customer its merges lead to goes, with everyone merged.
  v1::EraseCustomerResponse resp = EraseOk(a);
  EXPECT_EQ(resp.customer_id(), b);
  EXPECT_THAT(resp.merged_customer_ids(), ::testing::UnorderedElementsAre(a, d));
  EXPECT_EQ(resp.identifiers_erased(), 5);
  for (const std::string& gone : {a, b, d}) {
    ExpectErased(gone);
    ExpectNoTenantEntries(gone);
  }
  EXPECT_THAT(KeysHolding("qx7SecretOfA"), ::testing::IsEmpty());
  EXPECT_THAT(KeysHolding("qx7SecretOfB"), ::testing::IsEmpty());
  // No merge record is left.
  EXPECT_THAT(KeysNaming(absl::StrCat("os:{", tenant(), ":m:")), ::testing::IsEmpty());
  // The unmerged customer keeps everything but the history of a merge with an erased one.
  EXPECT_EQ(Timeline(c).size(), 1u);
  EXPECT_EQ(redis()->Run({"ZCARD", keys::CustomerKeys(tenant(), c).merge_history()}).integer, 0);
  EXPECT_EQ(ContextOk(c).profile().identifiers_size(), 1);
}

TEST_F(PrivacyServiceTest, MergesIntoOrFromAnErasedCustomerAreRefused) {
  std::string erased = NewCustomer("14155550161");
  std::string alive = NewCustomer("14155550162");
  AppendOk(alive, {Message("m1")});
  EraseOk(erased);
  auto before = StateSnapshot();
  grpc::Status st = Merge(erased, alive);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  st = Merge(alive, erased);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(st);
  EXPECT_EQ(StateSnapshot(), before);
  ExpectErased(erased);
}

TEST_F(PrivacyServiceTest, WritesRacingWithAnEraseNeverBringTheCustomerBack) {
  for (int round = 0; round < 3; ++round) {
    std::string phone = absl::StrCat("1415555017", round);
    std::string c = NewCustomer(phone);
    AppendOk(c, {Message(absl::StrCat("seed-", round))});
    std::atomic<bool> stop{false};
    std::atomic<int> appended{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; !stop.load() && i < 400; ++i) {
          v1::Event e = Message(absl::StrCat("race-", round, "-", t, "-", i), v1::CHANNEL_SMS,
                                std::nullopt, absl::StrCat("conv-", t));
          if (Append(PhoneRef(phone), {e}, /*create_if_missing=*/true).ok()) ++appended;
        }
      });
    }
    writers.emplace_back([&] {
      for (int i = 0; !stop.load() && i < 400; ++i) {
        (void)Link(
            c, Id(v1::IDENTIFIER_TYPE_EMAIL, absl::StrCat("race", round, "-", i, "@example.com")));
        v1::StartConversationResponse started;
        (void)Start(StartReq(c, absl::StrCat("conv-start-", i), v1::CHANNEL_CHATBOT, Bot("bot-1")),
                    &started);
      }
    });
    while (appended.load() < 20) absl::SleepFor(absl::Milliseconds(1));
    v1::EraseCustomerResponse resp = EraseOk(c);
    EXPECT_EQ(resp.customer_id(), c);
    absl::SleepFor(absl::Milliseconds(100));  // writes go on after the erase
    stop = true;
    for (auto& w : writers) w.join();
    ExpectErased(c);
    // Appends after the erase went to a new customer, never to the erased id.
    v1::ResolveRequest rr;
    rr.set_tenant(tenant());
    *rr.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, phone);
    v1::ResolveResponse now;
    if (server()->identity()->Resolve(Ctx().get(), rr, &now).ok()) {
      EXPECT_NE(now.customer_id(), c);
    }
  }
}

TEST_F(PrivacyServiceTest, AnInterruptedEraseIsFinishedByARetry) {
  int n = 0;
  for (const char* step : {"erase.tombstone", "erase.closure", "erase.sources", "erase.identifiers",
                           "erase.suggestions", "erase.outbox", "erase.engagement", "erase.alerts",
                           "erase.merges", "erase.keys", "erase.done"}) {
    SCOPED_TRACE(step);
    std::string secret = absl::StrCat("qx7Interrupted", n);
    std::string a =
        Seed(absl::StrCat("1415555018", n), absl::StrCat("a", n, "@example.com"), secret);
    std::string b = NewCustomer(absl::StrCat("1415555019", n));
    ASSERT_TRUE(Merge(b, a).ok());
    ++n;
    FailAt(step);
    v1::EraseCustomerResponse resp;
    grpc::Status st = Erase(Ref(a), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(st);
    if (std::string(step) != "erase.tombstone") {
      // Past the tombstone nothing about the customer is served any more.
      v1::GetContextResponse ctx;
      EXPECT_EQ(GetContext(a, v1::AUDIENCE_SUPERVISOR, 0, &ctx).error_code(),
                grpc::StatusCode::NOT_FOUND);
      EXPECT_EQ(GetContext(b, v1::AUDIENCE_SUPERVISOR, 0, &ctx).error_code(),
                grpc::StatusCode::NOT_FOUND);
    }
    FailAt("");
    resp = EraseOk(a);
    EXPECT_FALSE(resp.already_erased());
    EXPECT_EQ(resp.customer_id(), a);
    EXPECT_THAT(resp.merged_customer_ids(), ::testing::ElementsAre(b));
    EXPECT_EQ(resp.identifiers_erased(), 3);
    ExpectErased(a);
    ExpectErased(b);
    ExpectNoTenantEntries(a);
    EXPECT_THAT(KeysHolding(secret), ::testing::IsEmpty());
    EXPECT_THAT(KeysNaming(absl::AsciiStrToLower(secret)), ::testing::IsEmpty());
    EXPECT_EQ(redis()->Run({"HLEN", keys::PendingErasuresKey()}).integer, 0);
  }
}

TEST_F(PrivacyServiceTest, AnInterruptedEraseIsFinishedByRecovery) {
  std::string secret = "qx7Recovered";
  std::string c = Seed("14155550199", "rec@example.com", secret);
  FailAt("erase.identifiers");
  v1::EraseCustomerResponse resp;
  EXPECT_EQ(Erase(Ref(c), &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  FailAt("");
  // Too recent for the default age: left to whoever runs it now.
  absl::StatusOr<int> none =
      Await<int>([&](Callback<int> done) { store_->RecoverPending(Deadline(), std::move(done)); });
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
  absl::StatusOr<int> finished = Await<int>([&](Callback<int> done) {
    store_->RecoverPending(Deadline(absl::Seconds(30)), std::move(done), absl::ZeroDuration());
  });
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(*finished, 1);
  ExpectErased(c);
  ExpectNoTenantEntries(c);
  EXPECT_THAT(KeysHolding(secret), ::testing::IsEmpty());
  EXPECT_TRUE(EraseOk(c).already_erased());
}

TEST_F(PrivacyServiceTest, AnIdentifierLeftWithAnErasedCustomerIsFreeForANewOne) {
  std::string c = NewCustomer("14155550181");
  ASSERT_TRUE(Link(c, Id(v1::IDENTIFIER_TYPE_EMAIL, "left@example.com")).ok());
  // Stopped after the tombstone, before the index entries go: they still name c.
  FailAt("erase.identifiers");
  v1::EraseCustomerResponse resp;
  ASSERT_EQ(Erase(Ref(c), &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  FailAt("");
  ASSERT_EQ(IndexEntriesOf(c).size(), 2u);
  // Resolve with create makes a new customer, never the erased one.
  v1::ResolveRequest rr;
  rr.set_tenant(tenant());
  *rr.mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, "14155550181");
  rr.set_create_if_missing(true);
  v1::ResolveResponse fresh;
  ASSERT_TRUE(server()->identity()->Resolve(Ctx().get(), rr, &fresh).ok());
  EXPECT_NE(fresh.customer_id(), c);
  EXPECT_TRUE(fresh.created());
  // Link takes the other one over.
  std::string other = NewCustomer("14155550182");
  grpc::Status st = Link(other, Id(v1::IDENTIFIER_TYPE_EMAIL, "left@example.com"));
  EXPECT_TRUE(st.ok()) << Describe(st);
  EXPECT_THAT(IndexEntriesOf(c), ::testing::IsEmpty());
  // The retry finishes the erase and leaves the new owners alone.
  EXPECT_FALSE(EraseOk(c).already_erased());
  ExpectErased(c);
  EXPECT_EQ(ContextOk(fresh.customer_id()).profile().identifiers_size(), 1);
  EXPECT_EQ(ContextOk(other).profile().identifiers_size(), 2);
}

// ---- export -----------------------------------------------------------------------------------

TEST_F(PrivacyServiceTest, ExportStreamsEverySectionAndEveryEventInOrder) {
  std::string c = NewCustomer("14155550201");
  ASSERT_TRUE(Link(c, Id(v1::IDENTIFIER_TYPE_EMAIL, "exp@example.com")).ok());
  std::string m = NewCustomer("14155550202");
  AppendOk(m, {Message("merged-1")});
  ASSERT_TRUE(Merge(m, c).ok());
  StartOk(StartReq(c, "conv-1", v1::CHANNEL_CHATBOT, Bot("bot-1")));
  RecordFactsOk(FactsReq(c, {Collected("order_number", "A-1234")}));
  OpenCaseOk(OpenReq(c, "case-1", "order late"));
  for (int batch = 0; batch < 6; ++batch) {
    std::vector<v1::Event> events;
    for (int i = 0; i < 90; ++i) events.push_back(Message(absl::StrCat("e-", batch * 90 + i)));
    AppendOk(c, std::move(events));
  }
  std::vector<v1::Event> timeline = Timeline(c, v1::AUDIENCE_SUPERVISOR);
  ASSERT_GT(timeline.size(), 540u);

  grpc::Status st;
  std::vector<std::string> docs = Export(Ref(m), &st);  // by the merged id: its target's export
  ASSERT_TRUE(st.ok()) << Describe(st);
  std::vector<std::string> sections;
  std::vector<std::string> event_ids;
  google::protobuf::Struct profile, end;
  for (const std::string& doc : docs) {
    google::protobuf::Struct s = Parse(doc);
    std::string section = s.fields().at("section").string_value();
    if (sections.empty() || sections.back() != section) sections.push_back(section);
    if (section == "profile") profile = s;
    if (section == "end") end = s;
    if (section == "events") {
      const auto& list = s.fields().at("events").list_value().values();
      EXPECT_LE(list.size(), 200);
      for (const auto& e : list) {
        event_ids.push_back(e.struct_value().fields().at("event_id").string_value());
      }
    }
  }
  EXPECT_THAT(sections, ::testing::ElementsAre("profile", "conversations", "cases", "facts",
                                               "events", "end"));
  EXPECT_EQ(event_ids, EventIds(timeline));
  EXPECT_EQ(profile.fields().at("customer_id").string_value(), c);
  const auto& p = profile.fields().at("profile").struct_value().fields();
  EXPECT_EQ(p.at("identifiers").list_value().values_size(), 3);
  const auto& merged = profile.fields().at("merged_customers").list_value().values();
  ASSERT_EQ(merged.size(), 1);
  EXPECT_EQ(merged[0].struct_value().fields().at("customer_id").string_value(), m);
  const auto& counts = end.fields().at("counts").struct_value().fields();
  EXPECT_EQ(counts.at("events").number_value(), static_cast<double>(timeline.size()));
  EXPECT_EQ(counts.at("cases").number_value(), 1);
  EXPECT_EQ(counts.at("facts").number_value(), 1);
  EXPECT_EQ(counts.at("conversations").number_value(), 1);

  EXPECT_EQ(docs.size(), 8u);  // profile, 3 sections, 3 event pages, end
  Export(Ref("cus_nobody"), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EraseOk(c);
  Export(Ref(c), &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("was erased"));
}

TEST_F(PrivacyServiceTest, ExportOfACustomerWithoutEvents) {
  std::string c = NewCustomer("14155550211");
  grpc::Status st;
  std::vector<std::string> docs = Export(PhoneRef("14155550211"), &st);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(docs.size(), 5u);
  EXPECT_THAT(docs.back(), HasSubstr("\"events\":0"));
}

// ---- redact -----------------------------------------------------------------------------------

TEST_F(PrivacyServiceTest, RedactReplacesOneEventsTextEverywhereAndKeepsCursors) {
  std::string a = NewCustomer("14155550301");
  std::string b = NewCustomer("14155550302");
  v1::Event secret = Message("secret-event");
  secret.set_summary("card qx7CardNumber4111");
  secret.set_body("my card is qx7CardNumber4111 and my address qx7Address");
  secret.set_sentiment(-0.5f);
  (*secret.mutable_attributes())["order"] = "A-1";
  AppendOk(b, {Message("b-1"), secret, Message("b-2")});
  // b merged into a: a's timeline holds the event; b keeps a copy for an Unmerge.
  ASSERT_TRUE(Merge(b, a).ok());
  std::vector<v1::Event> events;
  for (int i = 0; i < 8; ++i) events.push_back(Message(absl::StrCat("a-", i)));
  AppendOk(a, std::move(events));
  std::vector<v1::Event> before = Timeline(a, v1::AUDIENCE_SUPERVISOR);
  ASSERT_EQ(before.size(), 11u);
  EXPECT_EQ(KeysHolding("qx7CardNumber4111").size(), 2u);  // a's timeline and b's copy

  // A page token and a watch cursor taken before the redaction.
  v1::ListRequest lreq;
  lreq.set_tenant(tenant());
  *lreq.mutable_customer() = Ref(a);
  lreq.set_order(v1::ORDER_OLDEST_FIRST);
  lreq.set_page_size(1);
  v1::ListResponse first;
  ASSERT_TRUE(server()->timeline()->List(Ctx().get(), lreq, &first).ok());
  ASSERT_FALSE(first.next_page_token().empty());

  v1::RedactEventResponse resp;
  grpc::Status st = Redact(a, "secret-event", "[card removed]", "", &resp);
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(resp.event().summary(), "[card removed]");
  EXPECT_EQ(resp.event().body(), "");
  EXPECT_TRUE(resp.event().has_redacted_at());
  EXPECT_EQ(resp.event().event_id(), "secret-event");

  EXPECT_THAT(KeysHolding("qx7CardNumber4111"), ::testing::IsEmpty());
  EXPECT_THAT(KeysHolding("qx7Address"), ::testing::IsEmpty());

  std::vector<v1::Event> after = Timeline(a, v1::AUDIENCE_SUPERVISOR);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].cursor(), before[i].cursor());
    EXPECT_EQ(after[i].event_id(), before[i].event_id());
    EXPECT_EQ(after[i].appended_at().seconds(), before[i].appended_at().seconds());
    if (after[i].event_id() == "secret-event") {
      EXPECT_EQ(after[i].summary(), "[card removed]");
      EXPECT_EQ(after[i].body(), "");
      EXPECT_EQ(after[i].sentiment(), -0.5f);
      EXPECT_EQ(after[i].attributes().at("order"), "A-1");
      EXPECT_EQ(after[i].channel(), before[i].channel());
      EXPECT_TRUE(after[i].has_redacted_at());
    } else {
      EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString());
    }
  }
  // The page token still continues where it was.
  lreq.set_page_token(first.next_page_token());
  lreq.set_page_size(500);
  v1::ListResponse rest;
  ASSERT_TRUE(server()->timeline()->List(Ctx().get(), lreq, &rest).ok());
  ASSERT_EQ(rest.events_size(), static_cast<int>(before.size()) - 1);
  EXPECT_EQ(rest.events(0).event_id(), before[1].event_id());
  // A watch resumed from a cursor before the event gets it (redacted) and the rest.
  v1::WatchRequest wreq;
  wreq.set_tenant(tenant());
  *wreq.mutable_customer() = Ref(a);
  wreq.set_after_cursor(before[0].cursor());
  auto wctx = Ctx(absl::Seconds(10));
  auto reader = server()->timeline()->Watch(wctx.get(), wreq);
  std::vector<v1::Event> watched;
  v1::WatchResponse msg;
  while (watched.size() < before.size() - 1 && reader->Read(&msg)) watched.push_back(msg.event());
  wctx->TryCancel();
  while (reader->Read(&msg)) {
  }
  (void)reader->Finish();
  ASSERT_EQ(watched.size(), before.size() - 1);
  EXPECT_EQ(watched[0].event_id(), before[1].event_id());
  // The stream keeps its last id: a new event lands after every old one.
  v1::AppendResponse appended;
  ASSERT_TRUE(Append(Ref(a), {Message("after-redact")}, false, &appended).ok());
  std::vector<v1::Event> now = Timeline(a, v1::AUDIENCE_SUPERVISOR);
  ASSERT_EQ(now.size(), before.size() + 1);
  EXPECT_EQ(now.back().event_id(), "after-redact");
  // An append retrying the redacted event is a duplicate answered with the stored text.
  v1::AppendResponse dup;
  ASSERT_TRUE(Append(Ref(a), {secret}, false, &dup).ok());
  EXPECT_TRUE(dup.results(0).duplicate());
  EXPECT_EQ(dup.results(0).event().summary(), "[card removed]");
  EXPECT_THAT(KeysHolding("qx7CardNumber4111"), ::testing::IsEmpty());
}

// A large timeline is redacted in bounded steps: every copy step copies at most
// kRedactChunkEntries entries and kRedactChunkBytes (+ one entry) bytes, whatever the
// timeline's size, while another tenant's appends and this customer's own appends go on; the
// appends made during the redaction are in the timeline exactly once, the cursors are those of
// before. SLOWLOG's figures for the redaction's commands are printed (not asserted: timing).
TEST_F(PrivacyServiceTest, RedactOfALargeTimelineRunsInBoundedStepsWhileOthersAppend) {
  constexpr int kEvents = 1500;
  const std::string big_body(64 * 1024, 'x');
  std::string a = NewCustomer("14155550311");
  for (int i = 0; i < kEvents; i += 50) {
    std::vector<v1::Event> batch;
    for (int j = i; j < i + 50; ++j) {
      v1::Event e = Message(absl::StrCat("big-", j));
      e.set_body(j == kEvents / 2
                     ? absl::StrCat("qx8LargeSecret ", std::string(64 * 1024 - 15, 'y'))
                     : big_body);
      batch.push_back(std::move(e));
    }
    AppendOk(a, std::move(batch));
  }
  std::vector<std::pair<std::string, std::string>> before = StreamEntries(a);
  ASSERT_EQ(before.size(), static_cast<size_t>(kEvents));
  keys::CustomerKeys ck(tenant(), a);

  // The staging copy's length before each step: the growth between two steps is what one
  // step copied.
  std::vector<int64_t> staged;
  Observe([&](const std::string& step) {
    if (step == "redact.copy" || step == "redact.swap") {
      staged.push_back(redis()->Run({"XLEN", ck.timeline_rebuild()}).integer);
    }
  });
  redis()->Run({"CONFIG", "SET", "slowlog-max-len", "1000000"});
  redis()->Run({"CONFIG", "SET", "slowlog-log-slower-than", "0"});
  redis()->Run({"SLOWLOG", "RESET"});

  std::atomic<bool> stop{false};
  std::atomic<int> other_ok{0}, other_failed{0}, own_ok{0}, own_failed{0};
  std::vector<std::string> own_ids;
  std::thread other([&] {
    std::string other_tenant = absl::StrCat(tenant(), "-other");
    for (int i = 0; !stop.load(); ++i) {
      v1::AppendRequest req;
      req.set_tenant(other_tenant);
      *req.mutable_customer()->mutable_identifier() = Id(v1::IDENTIFIER_TYPE_PHONE, "14155550312");
      req.set_create_if_missing(true);
      *req.add_events() = Message(absl::StrCat("n-", i));
      v1::AppendResponse resp;
      grpc::Status st = server()->timeline()->Append(Ctx().get(), req, &resp);
      (st.ok() ? other_ok : other_failed)++;
    }
  });
  std::thread own([&] {
    for (int i = 0; !stop.load(); ++i) {
      std::string id = absl::StrCat("during-", i);
      grpc::Status st = Append(Ref(a), {Message(id)});
      if (st.ok()) {
        own_ids.push_back(id);
        own_ok++;
      } else {
        own_failed++;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  absl::SleepFor(absl::Milliseconds(50));
  v1::RedactEventResponse resp;
  grpc::Status st = Redact(a, absl::StrCat("big-", kEvents / 2), "[removed]", "", &resp,
                           "GDPR art. 17", absl::Seconds(120));
  absl::SleepFor(absl::Milliseconds(50));
  stop = true;
  other.join();
  own.join();
  Observe(nullptr);
  redis::Reply slowlog = redis()->Run({"SLOWLOG", "GET", "-1"});
  redis()->Run({"CONFIG", "SET", "slowlog-log-slower-than", "10000"});
  redis()->Run({"SLOWLOG", "RESET"});
  ASSERT_TRUE(st.ok()) << Describe(st);
  EXPECT_EQ(resp.event().summary(), "[removed]");

  EXPECT_GT(other_ok.load(), 0);
  EXPECT_EQ(other_failed.load(), 0);
  EXPECT_GT(own_ok.load(), 0);
  EXPECT_EQ(own_failed.load(), 0);

  // The timeline: every event of before with its stream id, then the appends made meanwhile,
  // each once.
  std::vector<std::pair<std::string, std::string>> after = StreamEntries(a);
  ASSERT_EQ(after.size(), before.size() + own_ids.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i]);
  for (size_t i = 0; i < own_ids.size(); ++i)
    EXPECT_EQ(after[before.size() + i].second, own_ids[i]);

  // Every step within its bounds: the staging copy holds the timeline's first entries, so the
  // entries one step added are after[staged[i - 1]] .. after[staged[i] - 1].
  const int64_t big_entry = 64 * 1024;  // at least: the body
  int64_t most_entries = 0, most_bytes = 0;
  for (size_t i = 1; i < staged.size(); ++i) {
    if (staged[i] <= staged[i - 1]) continue;  // swapped or started over
    int64_t bytes = 0;
    for (int64_t k = staged[i - 1]; k < staged[i]; ++k) {
      bytes += absl::StartsWith(after[k].second, "big-") ? big_entry : 1;
    }
    most_entries = std::max(most_entries, staged[i] - staged[i - 1]);
    most_bytes = std::max(most_bytes, bytes);
  }
  EXPECT_LE(most_entries, privacy::kRedactChunkEntries);
  EXPECT_LE(most_bytes, privacy::kRedactChunkBytes + privacy::kRedactLargestEntryBytes);
  const int64_t min_steps = static_cast<int64_t>(kEvents) * big_entry /
                            (privacy::kRedactChunkBytes + privacy::kRedactLargestEntryBytes);
  EXPECT_GE(static_cast<int64_t>(staged.size()), min_steps);

  // SLOWLOG: the redaction's commands are the function calls naming the staging stream (Redis
  // 7.0 lists the commands a function runs too; a call's time includes theirs).
  int64_t redaction_commands = 0, redaction_max_us = 0, redaction_total_us = 0, others_max_us = 0;
  for (const auto& entry : slowlog.elements) {
    int64_t us = entry.elements[2].integer;
    bool mine = false;
    const auto& args = entry.elements[3].elements;
    for (const auto& arg : args) mine |= arg.str == ck.timeline_rebuild();
    bool script = absl::StartsWith(args[0].str, "FCALL");
    if (mine && script) {
      ++redaction_commands;
      redaction_max_us = std::max(redaction_max_us, us);
      redaction_total_us += us;
    } else if (!mine) {
      others_max_us = std::max(others_max_us, us);
    }
  }
  std::printf(
      "redaction of %d events of 64 KiB: %lld steps; SLOWLOG: %lld commands, longest %lld "
      "us, total %lld us; longest other command %lld us; %d other-tenant appends\n",
      kEvents, static_cast<long long>(staged.size()), static_cast<long long>(redaction_commands),
      static_cast<long long>(redaction_max_us), static_cast<long long>(redaction_total_us),
      static_cast<long long>(others_max_us), other_ok.load());
  EXPECT_GE(redaction_commands, min_steps);
  EXPECT_THAT(KeysHolding("qx8LargeSecret"), ::testing::IsEmpty());
  EXPECT_EQ(redis()->Run({"EXISTS", ck.timeline_rebuild()}).integer, 0);
  EXPECT_EQ(redis()->Run({"HLEN", keys::PendingRedactionsKey()}).integer, 0);
}

// A redaction stopped at any step (as a crash would) is finished by a retry of the same call
// or by RecoverPending: every event once with its stream id, the appends made in between
// present once, the old text gone (the merged customer's copy too), nothing left over.
TEST_F(PrivacyServiceTest, AnInterruptedRedactionIsFinishedByARetryOrByRecovery) {
  struct Stop {
    const char* step;
    int nth;
  };
  int n = 0;
  for (const Stop& stop : std::vector<Stop>{{"redact.begin", 1},
                                            {"redact.copy", 1},
                                            {"redact.copy", 3},
                                            {"redact.swap", 1},
                                            {"redact.swap", 2},
                                            {"redact.records", 1},
                                            {"redact.done", 1}}) {
    for (bool recover : {false, true}) {
      SCOPED_TRACE(absl::StrCat(stop.step, " #", stop.nth, recover ? " recovery" : " retry"));
      std::string secret = absl::StrCat("qx7Stopped", n);
      std::string a = NewCustomer(absl::StrCat("1415555040", n % 10, n / 10));
      std::string b = NewCustomer(absl::StrCat("1415555060", n % 10, n / 10));
      ++n;
      v1::Event e = Message("stopped-event");
      e.set_body(absl::StrCat("my card is ", secret));
      AppendOk(b, {Message("b-1"), e, Message("b-2")});
      ASSERT_TRUE(Merge(b, a).ok());
      for (int i = 0; i < 600; i += 100) {
        std::vector<v1::Event> batch;
        for (int j = i; j < i + 100; ++j) batch.push_back(Message(absl::StrCat("a-", j)));
        AppendOk(a, std::move(batch));
      }
      std::vector<std::pair<std::string, std::string>> before = StreamEntries(a);
      std::vector<std::pair<std::string, std::string>> before_b = StreamEntries(b);
      ASSERT_EQ(before.size(), 603u);

      FailAt(stop.step, stop.nth);
      v1::RedactEventResponse resp;
      grpc::Status st = Redact(a, "stopped-event", "[removed]", "", &resp);
      EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(st);
      FailAt("");
      // Appends while it is stopped.
      AppendOk(a, {Message("between-1"), Message("between-2")});
      if (recover) {
        absl::StatusOr<int> finished = Await<int>([&](Callback<int> done) {
          store_->RecoverPending(Deadline(absl::Seconds(30)), std::move(done),
                                 absl::ZeroDuration());
        });
        ASSERT_TRUE(finished.ok()) << finished.status();
        // Stopped before its record was written, there is nothing to finish.
        EXPECT_EQ(*finished, std::string(stop.step) == "redact.begin" ? 0 : 1);
      }
      st = Redact(a, "stopped-event", "[removed]", "", &resp);
      ASSERT_TRUE(st.ok()) << Describe(st);
      EXPECT_EQ(resp.event().summary(), "[removed]");
      EXPECT_EQ(resp.event().body(), "");
      EXPECT_EQ(resp.event().customer_id(), a);

      std::vector<std::pair<std::string, std::string>> after = StreamEntries(a);
      ASSERT_EQ(after.size(), before.size() + 2);
      for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], before[i]);
      EXPECT_EQ(after[before.size()].second, "between-1");
      EXPECT_EQ(after[before.size() + 1].second, "between-2");
      EXPECT_EQ(StreamEntries(b), before_b);
      EXPECT_THAT(KeysHolding(secret), ::testing::IsEmpty());
      for (const std::string& c : {a, b}) {
        keys::CustomerKeys ck(tenant(), c);
        EXPECT_EQ(redis()->Run({"EXISTS", ck.timeline_rebuild()}).integer, 0);
        EXPECT_EQ(redis()->Run({"HEXISTS", ck.redaction(), "tok"}).integer, 0);
      }
      EXPECT_EQ(redis()->Run({"HLEN", keys::PendingRedactionsKey()}).integer, 0);
      // The page token of the first page still continues where it was.
      std::vector<v1::Event> events = Timeline(a, v1::AUDIENCE_SUPERVISOR);
      ASSERT_EQ(events.size(), after.size());
    }
  }
}

// Redacting an event reaches the copies of its text in records: a case update's note (GetCase,
// GetContext), the values of the facts it recorded (current and previous), and the same in the
// records of a customer merged in (kept for an Unmerge).
TEST_F(PrivacyServiceTest, RedactReachesTheCopiesInCasesFactsAndMergedCustomers) {
  std::string a = NewCustomer("14155550321");
  std::string b = NewCustomer("14155550322");
  for (const auto& [c, tag] : {std::pair{b, std::string("B")}, std::pair{a, std::string("A")}}) {
    OpenCaseOk(OpenReq(c, absl::StrCat("case-", tag), "delivery"));
    v1::UpdateCaseRequest up = UpdateReq(c, absl::StrCat("case-", tag));
    up.set_note(absl::StrCat("customer said qx9Note", tag));
    up.set_request_id(absl::StrCat("upd-", tag));
    UpdateCaseOk(up);
    v1::RecordFactsRequest facts =
        FactsReq(c, {Collected("order_number", absl::StrCat("qx9Fact", tag)),
                     Collected("zip", absl::StrCat("qx9Zip", tag))});
    facts.set_request_id(absl::StrCat("facts-", tag));
    RecordFactsOk(facts);
  }
  // A later statement supersedes a's zip: the redacted value stays as its previous value.
  v1::RecordFactsRequest later = FactsReq(a, {Collected("zip", "94107")});
  later.set_request_id("facts-A2");
  RecordFactsOk(later);
  ASSERT_TRUE(Merge(b, a).ok());
  ASSERT_THAT(KeysHolding("qx9NoteA"), ::testing::Not(::testing::IsEmpty()));

  v1::RedactEventResponse resp;
  for (const char* tag : {"A", "B"}) {
    grpc::Status st =
        Redact(a, absl::StrCat("cu:upd-", tag), "case updated: note", "[note removed]", &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
    st = Redact(a, absl::StrCat("fr:facts-", tag), "recorded facts", "", &resp);
    ASSERT_TRUE(st.ok()) << Describe(st);
  }

  EXPECT_EQ(GetCaseOk(a, "case-A").last_note(), "[note removed]");
  EXPECT_EQ(GetCaseOk(a, "case-B").last_note(), "[note removed]");
  v1::GetContextResponse ctx = ContextOk(a, v1::AUDIENCE_SUPERVISOR);
  ASSERT_EQ(ctx.open_cases_size(), 2);
  for (const v1::Case& c : ctx.open_cases()) {
    EXPECT_THAT(c.last_note(), ::testing::Not(HasSubstr("qx9Note"))) << c.case_id();
  }
  bool zip_seen = false;
  for (const v1::Fact& f : ctx.facts()) {
    EXPECT_THAT(f.value(), ::testing::Not(HasSubstr("qx9"))) << f.name();
    EXPECT_THAT(f.previous_value(), ::testing::Not(HasSubstr("qx9"))) << f.name();
    if (f.name() == "zip") {
      zip_seen = true;
      EXPECT_EQ(f.value(), "94107");  // stated by an event not redacted
    }
  }
  EXPECT_TRUE(zip_seen);
  // Nowhere in Redis: not in a's records, not in b's (kept for an Unmerge).
  for (const char* text : {"qx9NoteA", "qx9NoteB", "qx9FactA", "qx9FactB", "qx9ZipA", "qx9ZipB"}) {
    EXPECT_THAT(KeysHolding(text), ::testing::IsEmpty()) << text;
  }
}

// ---- consent ----------------------------------------------------------------------------------

TEST_F(PrivacyServiceTest, EventsOnAChannelWhoseConsentIsDeniedAreRefused) {
  std::string c = NewCustomer("14155550401");
  AppendOk(c, {Message("sms-1", v1::CHANNEL_SMS)});
  ASSERT_TRUE(SetConsent(c, v1::CHANNEL_SMS, v1::CONSENT_STATE_DENIED).ok());
  auto before = StateSnapshot();
  grpc::Status st = Append(Ref(c), {Message("sms-2", v1::CHANNEL_SMS)});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_THAT(st.error_message(), HasSubstr("consent withdrawn for channel CHANNEL_SMS"));
  // In a batch: the whole request is refused.
  st = Append(Ref(c), {Message("chat-1", v1::CHANNEL_WEB_CHAT), Message("sms-3", v1::CHANNEL_SMS)});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  // Engagement operations write events too.
  v1::StartConversationResponse sresp;
  st = Start(StartReq(c, "conv-sms", v1::CHANNEL_SMS, Bot("bot-1")), &sresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(st);
  EXPECT_EQ(StateSnapshot(), before);
  // Other channels are not affected; the context shows the consent.
  AppendOk(c, {Message("chat-2", v1::CHANNEL_WEB_CHAT)});
  v1::GetContextResponse ctx = ContextOk(c);
  ASSERT_EQ(ctx.profile().consents_size(), 1);
  EXPECT_EQ(ctx.profile().consents(0).channel(), v1::CHANNEL_SMS);
  EXPECT_EQ(ctx.profile().consents(0).state(), v1::CONSENT_STATE_DENIED);
  // Granted again: accepted.
  ASSERT_TRUE(SetConsent(c, v1::CHANNEL_SMS, v1::CONSENT_STATE_GRANTED).ok());
  AppendOk(c, {Message("sms-4", v1::CHANNEL_SMS)});
  EXPECT_EQ(ContextOk(c).profile().consents(0).state(), v1::CONSENT_STATE_GRANTED);
}

}  // namespace
}  // namespace onestory::testing
