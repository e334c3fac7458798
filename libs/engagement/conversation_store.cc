#include "libs/engagement/conversation_store.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/event_builder.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/lua/engagement_conversation_end.h"
#include "libs/lua/engagement_conversation_facts.h"
#include "libs/lua/engagement_conversation_handoff.h"
#include "libs/lua/engagement_conversation_start.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;
// A fact as the facts list of the functions holds it (os_fact_fields values, in the order
// libs/engagement/lua/facts.lua reads them).
void AppendFactArgs(const v1::Fact& f, std::vector<std::string>* args) {
  args->push_back(absl::StrCat(static_cast<int>(f.type())));
  args->push_back(f.name());
  args->push_back(f.value());
  args->push_back(absl::StrCat(f.has_expires_at() ? ToMillis(f.expires_at()) : 0));
  args->push_back(absl::StrCat(f.has_due_at() ? ToMillis(f.due_at()) : 0));
  args->push_back(f.case_id());
  args->push_back(f.conversation_id());
  args->push_back(absl::StrCat(static_cast<int>(f.visibility())));
}

// A customer created now has no case: a request naming one is NOT_FOUND before it is created.
BeforeCreate NoCaseYet(std::string field, std::string case_id) {
  if (case_id.empty()) return nullptr;
  return [field = std::move(field), case_id = std::move(case_id)](Callback<bool> done) {
    done(absl::NotFoundError(
        absl::StrCat(field, ": the customer (created by this request) has no case ", case_id)));
  };
}

absl::Status ValidateFacts(absl::string_view field,
                           const google::protobuf::RepeatedPtrField<v1::Fact>& facts, int64_t now,
                           bool required) {
  if (required && facts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at least one fact is required"));
  }
  if (facts.size() > kMaxFactsPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most ", kMaxFactsPerRequest, " facts per request"));
  }
  absl::flat_hash_set<std::pair<int, std::string>> seen;
  for (int i = 0; i < facts.size(); ++i) {
    std::string f = absl::StrCat(field, "[", i, "]");
    RETURN_IF_ERROR(ValidateFact(f, facts[i], now));
    if (!seen.insert({facts[i].type(), facts[i].name()}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ": repeats the type and name of an earlier fact of this request"));
    }
  }
  return absl::OkStatus();
}

// Facts JSON from reply elements [from, end).
absl::Status AddFacts(const Reply& r, size_t from,
                      google::protobuf::RepeatedPtrField<v1::Fact>* out) {
  for (size_t i = from; i < r.elements.size(); ++i) {
    if (r.elements[i].str.empty()) continue;
    ASSIGN_OR_RETURN(Record s, ParseRecord(r.elements[i].str));
    *out->Add() = FactFromRecord(s);
  }
  return absl::OkStatus();
}

// The common shape of the replies: {flag, record, stream id, blob or extra, ...}.
absl::Status CheckReply(const Reply& r, size_t min_size, absl::string_view what) {
  if (!r.is_array() || r.elements.size() < min_size) {
    return absl::InternalError(absl::StrCat("unexpected reply from the ", what, " function"));
  }
  return absl::OkStatus();
}

// Handoff and End answer alike, from {duplicate, record, stream id, stored blob}. The event this
// call wrote gets the channel and case id the function added to it (the conversation's).
template <typename Response>
absl::Status ConversationReply(const ScriptResult& r, const std::string& conv,
                               const v1::Event& built, Response* resp) {
  const Reply& rep = r.reply;
  RETURN_IF_ERROR(CheckReply(rep, 4, "conversation"));
  resp->set_customer_id(r.customer_id);
  resp->set_duplicate(rep.elements[0].integer == 1);
  if (!rep.elements[1].str.empty()) {
    ASSIGN_OR_RETURN(Record rec, ParseRecord(rep.elements[1].str));
    *resp->mutable_conversation() = ConversationFromRecord(conv, r.customer_id, rec);
  }
  if (rep.elements[2].str.empty()) return absl::OkStatus();  // ended by an appended event
  ASSIGN_OR_RETURN(v1::Event e, StoredEvent(r.customer_id, rep.elements[2].str, rep.elements[3].str,
                                            resp->duplicate() ? nullptr : &built));
  if (!resp->duplicate()) {
    e.set_channel(resp->conversation().channel());
    e.set_case_id(resp->conversation().case_id());
  }
  *resp->mutable_event() = std::move(e);
  return absl::OkStatus();
}

std::string FactNames(const google::protobuf::RepeatedPtrField<v1::Fact>& facts) {
  return absl::StrJoin(facts, ", ", [](std::string* out, const v1::Fact& f) {
    absl::StrAppend(out, v1::FactType_Name(f.type()).substr(10), " ", f.name());
  });
}

}  // namespace

void ConversationStore::Start(const v1::StartConversationRequest& sent, absl::Time deadline,
                              Callback<v1::StartConversationResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, true);
  }
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateActor("served_by", sent.served_by(), true);
  if (st.ok()) st = ValidateToken("case_id", sent.case_id(), timeline::kMaxRefIdBytes, true);
  if (st.ok()) st = ValidateText("summary", sent.summary(), timeline::kMaxSummaryBytes);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  absl::StatusOr<google::protobuf::Timestamp> at =
      st.ok() ? OccurredAt("occurred_at", sent, now) : st;
  if (!at.ok()) return done(at.status());
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::StartConversationRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  std::string conv = req.conversation_id().empty() ? NewRandomId("cv_") : req.conversation_id();
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("cs:", conv));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CONVERSATION_STARTED);
  *event->mutable_occurred_at() = *at;
  *event->mutable_actor() = req.served_by();
  event->set_summary(req.summary().empty()
                         ? absl::StrCat("conversation started with ", ActorName(req.served_by()))
                         : req.summary());
  event->set_conversation_id(conv);
  event->set_case_id(req.case_id());
  event->set_visibility(req.visibility());
  lua::EngagementConversationStart call;
  call.conversation_id = conv;
  call.served_by_type = static_cast<int>(req.served_by().type());
  call.served_by_id = req.served_by().id();
  call.case_id = req.case_id();
  SetEvent(*event, &call);
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), req.create_if_missing(), std::move(call), now, deadline,
      [conv, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        if (!r.ok()) return done(r.status());
        const Reply& rep = r->reply;
        if (absl::Status st = CheckReply(rep, 4, "start"); !st.ok()) return done(st);
        v1::StartConversationResponse resp;
        resp.set_customer_id(r->customer_id);
        resp.set_already_started(rep.elements[0].integer == 1);
        absl::StatusOr<Record> rec = ParseRecord(rep.elements[1].str);
        if (!rec.ok()) return done(rec.status());
        *resp.mutable_conversation() = ConversationFromRecord(conv, r->customer_id, *rec);
        if (resp.already_started()) {
          absl::StatusOr<v1::Event> e =
              StoredEvent(r->customer_id, rep.elements[2].str, rep.elements[3].str, nullptr);
          if (e.ok()) *resp.mutable_event() = *std::move(e);
        } else {
          absl::StatusOr<v1::Event> e =
              StoredEvent(r->customer_id, rep.elements[2].str, "", event.get());
          if (!e.ok()) return done(e.status());
          *resp.mutable_event() = *std::move(e);
          if (!rep.elements[3].str.empty()) {
            absl::StatusOr<Record> rc = ParseRecord(rep.elements[3].str);
            if (!rc.ok()) return done(rc.status());
            *resp.mutable_repeat_contact() = RepeatFromRecord(*rc);
          }
        }
        done(std::move(resp));
      },
      NoCaseYet("case_id", req.case_id()));
}

void ConversationStore::Handoff(const v1::HandoffRequest& sent, absl::Time deadline,
                                Callback<v1::HandoffResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, false);
  }
  if (st.ok()) st = ValidateActor("from", sent.from(), true);
  if (st.ok()) st = ValidateActor("to", sent.to(), true);
  if (st.ok()) st = ValidateChannel("to_channel", sent.to_channel(), false);
  if (st.ok() && sent.reason().empty()) {
    st = absl::InvalidArgumentError("reason: required (why the conversation is handed off)");
  }
  if (st.ok()) st = ValidateText("reason", sent.reason(), kMaxReasonBytes);
  if (st.ok()) st = ValidateText("summary", sent.summary(), timeline::kMaxSummaryBytes);
  if (st.ok()) st = ValidateText("transcript", sent.transcript(), timeline::kMaxBodyBytes);
  if (st.ok()) st = ValidateFacts("collected", sent.collected(), now, false);
  if (st.ok()) st = ValidateToken("request_id", sent.request_id(), timeline::kMaxRefIdBytes, true);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::HandoffRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(
      absl::StrCat("ho:", req.request_id().empty() ? NewRandomId("") : req.request_id()));
  if (req.to_channel() != v1::CHANNEL_UNSPECIFIED) event->set_channel(req.to_channel());
  event->set_kind(v1::EVENT_KIND_HANDOFF);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.from();
  event->set_summary(req.summary().empty()
                         ? absl::StrCat("handed off to ", ActorName(req.to()), ": ", req.reason())
                         : req.summary());
  event->set_body(req.transcript());
  event->set_conversation_id(req.conversation_id());
  event->set_visibility(req.visibility());
  auto& attrs = *event->mutable_attributes();
  attrs["from"] = ActorName(req.from());
  attrs["to"] = ActorName(req.to());
  attrs["reason"] = req.reason();
  if (req.to_channel() != v1::CHANNEL_UNSPECIFIED) {
    attrs["to_channel"] = v1::Channel_Name(req.to_channel());
  }
  if (!req.collected().empty()) attrs["collected"] = FactNames(req.collected());
  // The channel (unless to_channel is set) and case id are the conversation's, added by
  // engagement_conversation_handoff.
  lua::EngagementConversationHandoff call;
  call.conversation_id = req.conversation_id();
  call.from_type = static_cast<int>(req.from().type());
  call.from_id = req.from().id();
  call.to_type = static_cast<int>(req.to().type());
  call.to_id = req.to().id();
  call.to_channel = static_cast<int>(req.to_channel());
  call.max_facts = kMaxFactsPerCustomer;
  SetEvent(*event, &call);
  for (const v1::Fact& f : req.collected()) AppendFactArgs(f, &call.new_facts);
  std::string conv = req.conversation_id();
  RunCustomerScript(ctx_, req.tenant(), req.customer(), false, std::move(call), now, deadline,
                    [conv, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                      if (!r.ok()) return done(r.status());
                      v1::HandoffResponse resp;
                      if (absl::Status st = ConversationReply(*r, conv, *event, &resp); !st.ok()) {
                        return done(st);
                      }
                      done(std::move(resp));
                    });
}

void ConversationStore::End(const v1::EndConversationRequest& sent, absl::Time deadline,
                            Callback<v1::EndConversationResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, false);
  }
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateText("outcome", sent.outcome(), kMaxOutcomeBytes, false);
  if (st.ok()) st = ValidateToken("wrap_up_code", sent.wrap_up_code(), kMaxWrapUpBytes, true);
  if (st.ok()) st = ValidateText("summary", sent.summary(), timeline::kMaxSummaryBytes);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::EndConversationRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("ce:", req.conversation_id()));
  event->set_kind(v1::EVENT_KIND_CONVERSATION_ENDED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(
      req.summary().empty()
          ? absl::StrCat("conversation ended", req.outcome().empty() ? "" : ": ", req.outcome())
          : req.summary());
  event->set_conversation_id(req.conversation_id());
  event->set_visibility(req.visibility());
  if (!req.outcome().empty()) (*event->mutable_attributes())["outcome"] = req.outcome();
  if (!req.wrap_up_code().empty()) {
    (*event->mutable_attributes())["wrap_up_code"] = req.wrap_up_code();
  }
  lua::EngagementConversationEnd call;
  call.conversation_id = req.conversation_id();
  call.outcome = req.outcome();
  call.wrap_up_code = req.wrap_up_code();
  SetEvent(*event, &call);
  std::string conv = req.conversation_id();
  RunCustomerScript(ctx_, req.tenant(), req.customer(), false, std::move(call), now, deadline,
                    [conv, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                      if (!r.ok()) return done(r.status());
                      v1::EndConversationResponse resp;
                      if (absl::Status st = ConversationReply(*r, conv, *event, &resp); !st.ok()) {
                        return done(st);
                      }
                      done(std::move(resp));
                    });
}

void ConversationStore::RecordFacts(const v1::RecordFactsRequest& sent, absl::Time deadline,
                                    Callback<v1::RecordFactsResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateFacts("facts", sent.facts(), now, true);
  if (st.ok()) st = ValidateToken("request_id", sent.request_id(), timeline::kMaxRefIdBytes, true);
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::RecordFactsRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(
      absl::StrCat("fr:", req.request_id().empty() ? NewRandomId("") : req.request_id()));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_FACTS_RECORDED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(absl::StrCat("recorded ", FactNames(req.facts())));
  // The event is as private as the most private fact; it names the facts, not their values.
  v1::Audience visibility = v1::AUDIENCE_CUSTOMER;
  for (const v1::Fact& f : req.facts()) {
    v1::Audience v =
        f.visibility() == v1::AUDIENCE_UNSPECIFIED ? v1::AUDIENCE_AGENT : f.visibility();
    visibility = std::max(visibility, v);
    if (event->conversation_id().empty()) event->set_conversation_id(f.conversation_id());
    if (event->case_id().empty()) event->set_case_id(f.case_id());
  }
  event->set_visibility(visibility);
  lua::EngagementConversationFacts call;
  call.actor_type = static_cast<int>(req.actor().type());
  call.actor_id = req.actor().id();
  call.channel = static_cast<int>(req.channel());
  call.max_facts = kMaxFactsPerCustomer;
  SetEvent(*event, &call);
  for (const v1::Fact& f : req.facts()) AppendFactArgs(f, &call.new_facts);
  std::pair<std::string, std::string> first_case;  // a fact naming a case: field, case id
  for (int i = 0; i < req.facts_size() && first_case.second.empty(); ++i) {
    first_case = {absl::StrCat("facts[", i, "].case_id"), req.facts(i).case_id()};
  }
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), req.create_if_missing(), std::move(call), now, deadline,
      [event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        if (!r.ok()) return done(r.status());
        const Reply& rep = r->reply;
        if (absl::Status st = CheckReply(rep, 4, "facts"); !st.ok()) return done(st);
        v1::RecordFactsResponse resp;
        resp.set_customer_id(r->customer_id);
        resp.set_duplicate(rep.elements[0].integer == 1);
        absl::StatusOr<v1::Event> e =
            StoredEvent(r->customer_id, rep.elements[2].str, rep.elements[3].str,
                        resp.duplicate() ? nullptr : event.get());
        if (!e.ok()) return done(e.status());
        *resp.mutable_event() = *std::move(e);
        if (absl::Status st = AddFacts(rep, 4, resp.mutable_facts()); !st.ok()) return done(st);
        done(std::move(resp));
      },
      [first_case](Callback<bool> cb) {
        if (first_case.second.empty()) return cb(true);
        cb(absl::NotFoundError(absl::StrCat(first_case.first,
                                            ": the customer (created by this request) has no case ",
                                            first_case.second)));
      });
}

}  // namespace onestory::engagement
