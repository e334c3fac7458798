#include "libs/engagement/case_store.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/event_builder.h"
#include "libs/engagement/journey_stats.h"
#include "libs/engagement/records.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_case_get.h"
#include "libs/lua/engagement_case_open.h"
#include "libs/lua/engagement_case_resolve.h"
#include "libs/lua/engagement_case_update.h"
#include "libs/lua/engagement_journey_set.h"
#include "libs/privacy/free_text.h"
#include "libs/timeline/event_validation.h"

namespace onestory::engagement {
namespace {

using redis::Reply;
template <typename Response>
void CaseReply(const std::string& case_id, absl::StatusOr<ScriptResult> r,
               const std::shared_ptr<v1::Event>& event, Callback<Response>& done,
               absl::AnyInvocable<void(Response*, bool)> set_flag) {
  if (!r.ok()) return done(r.status());
  const Reply& rep = r->reply;
  if (!rep.is_array() || rep.elements.size() < 4) {
    return done(absl::InternalError("unexpected reply from a case function"));
  }
  Response resp;
  bool again = rep.elements[0].integer == 1;
  set_flag(&resp, again);
  absl::StatusOr<Record> rec = ParseRecord(rep.elements[1].str);
  if (!rec.ok()) return done(rec.status());
  *resp.mutable_case_() = CaseFromRecord(case_id, r->customer_id, *rec);
  if (!rep.elements[2].str.empty()) {
    absl::StatusOr<v1::Event> e = StoredEvent(r->customer_id, rep.elements[2].str,
                                              rep.elements[3].str, again ? nullptr : event.get());
    if (!e.ok()) return done(e.status());
    *resp.mutable_event() = *std::move(e);
  }
  done(std::move(resp));
}

// The journey check of the case functions (os_check_stage, libs/engagement/lua/case.lua), for a
// customer not created yet.
absl::StatusOr<bool> CheckStage(const std::string* journey, const std::string& stage) {
  if (journey == nullptr) {
    return absl::FailedPreconditionError(
        "stage: the tenant has no journey; set one with CaseService.SetJourney or leave stage "
        "empty");
  }
  std::vector<std::string> stages = absl::StrSplit(*journey, '\n', absl::SkipEmpty());
  if (std::find(stages.begin(), stages.end(), stage) != stages.end()) return true;
  return absl::InvalidArgumentError(absl::StrCat("stage: \"", stage,
                                                 "\" is not a stage of the tenant's journey (",
                                                 absl::StrJoin(stages, ", "), ")"));
}

// SetJourney's steps: reads the stages, counts the open cases of those it drops in every
// bucket of the open-case index, then sets the stages if they are still the ones read (else
// reads and counts again, `attempts` times in all).
void SetStages(redis::Client* client, const std::string& tenant, std::vector<std::string> stages,
               absl::Time deadline, int attempts, Callback<v1::Journey> done) {
  const std::string key = keys::TenantKeys(tenant).journey_stages();
  client->Command(
      {"GET", key}, deadline,
      [=, stages = std::move(stages), done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        const std::string checked = r->is_nil() ? "" : r->str;
        absl::flat_hash_set<std::string> keep(stages.begin(), stages.end());
        std::vector<std::string> dropped;
        for (absl::string_view st : absl::StrSplit(checked, '\n', absl::SkipEmpty())) {
          if (!keep.contains(st)) dropped.emplace_back(st);
        }
        CountOpenCases(
            client, tenant, dropped, deadline,
            [=, stages = std::move(stages),
             done = std::move(done)](absl::StatusOr<std::vector<int64_t>> n) mutable {
              if (!n.ok()) return done(n.status());
              for (size_t i = 0; i < dropped.size(); ++i) {
                if ((*n)[i] > 0) {
                  return done(absl::FailedPreconditionError(
                      absl::StrCat("stages: stage \"", dropped[i], "\" still has ", (*n)[i],
                                   " open cases; move or resolve them before removing it")));
                }
              }
              lua::EngagementJourneySet call;
              call.journey_stages = key;
              call.checked = checked;
              call.stages = stages;
              client->Fcall(
                  call, deadline,
                  [=, stages = std::move(stages),
                   done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                    if (!r.ok()) return done(r.status());
                    if (r->integer == 1) {
                      v1::Journey journey;
                      for (const std::string& s : stages) journey.add_stages(s);
                      return done(journey);
                    }
                    if (attempts <= 1) {
                      return done(absl::AbortedError(
                          "stages: the journey was changed meanwhile by another call; retry"));
                    }
                    SetStages(client, tenant, std::move(stages), deadline, attempts - 1,
                              std::move(done));
                  });
            });
      });
}

absl::Status ValidateCaseId(const std::string& id, bool allow_empty) {
  return ValidateToken("case_id", id, timeline::kMaxRefIdBytes, allow_empty);
}

// The tenant's journey stages, one per line ('' when it has none), read before a case call:
// they live in another hash slot than the customer's keys, so the function is given them.
void ReadStages(redis::Client* client, const std::string& tenant, absl::Time deadline,
                Callback<std::string> done) {
  client->Command({"GET", keys::TenantKeys(tenant).journey_stages()}, deadline,
                  [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                    if (!r.ok()) return done(r.status());
                    done(r->is_nil() ? std::string() : r->str);
                  });
}

}  // namespace

void CaseStore::Open(const v1::OpenCaseRequest& sent, absl::Time deadline,
                     Callback<v1::OpenCaseResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateCaseId(sent.case_id(), true);
  if (st.ok() && sent.topic().empty()) st = absl::InvalidArgumentError("topic: required");
  if (st.ok()) st = ValidateText("topic", sent.topic(), kMaxTopicBytes, false);
  if (st.ok() && !sent.stage().empty()) st = ValidateStage("stage", sent.stage());
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateActor("owner", sent.owner(), sent.has_owner());
  if (st.ok()) {
    st = ValidateToken("conversation_id", sent.conversation_id(), timeline::kMaxRefIdBytes, true);
  }
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::OpenCaseRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  std::string id = req.case_id().empty() ? NewRandomId("case_") : req.case_id();
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("co:", id));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CASE_OPENED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(absl::StrCat("case opened: ", req.topic()));
  event->set_conversation_id(req.conversation_id());
  event->set_case_id(id);
  event->set_visibility(req.visibility());
  if (!req.stage().empty()) (*event->mutable_attributes())["stage"] = req.stage();
  if (req.has_owner()) (*event->mutable_attributes())["owner"] = ActorName(req.owner());
  lua::EngagementCaseOpen call;
  call.case_id = id;
  call.topic = req.topic();
  call.stage = req.stage();
  call.owner_type = static_cast<int>(req.owner().type());
  call.owner_id = req.owner().id();
  call.conversation_id = req.conversation_id();
  call.actor_type = static_cast<int>(req.actor().type());
  call.actor_id = req.actor().id();
  call.max_open_cases = kMaxOpenCasesPerCustomer;
  call.forget_resolved_ms = kResolvedCaseKeepMs;
  call.forget_over_cases = kCasesBeforeForget;
  SetEvent(*event, &call);
  ReadStages(ctx_.client, req.tenant(), deadline,
             [this, req, id, event, call = std::move(call), now, deadline,
              done = std::move(done)](absl::StatusOr<std::string> stages) mutable {
               if (!stages.ok()) return done(stages.status());
               call.stages = *stages;
               // Before creating a customer for this case: the stage must fit the journey.
               BeforeCreate check_stage = nullptr;
               if (!req.stage().empty()) {
                 check_stage = [stages = *stages, stage = req.stage()](Callback<bool> cb) {
                   cb(CheckStage(stages.empty() ? nullptr : &stages, stage));
                 };
               }
               RunCustomerScript(
                   ctx_, req.tenant(), req.customer(), req.create_if_missing(), std::move(call),
                   now, deadline,
                   [id, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                     CaseReply<v1::OpenCaseResponse>(id, std::move(r), event, done,
                                                     [](v1::OpenCaseResponse* resp, bool again) {
                                                       resp->set_already_open(again);
                                                     });
                   },
                   std::move(check_stage));
             });
}

void CaseStore::Update(const v1::UpdateCaseRequest& sent, absl::Time deadline,
                       Callback<v1::UpdateCaseResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateCaseId(sent.case_id(), false);
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok() && !sent.stage().empty()) st = ValidateStage("stage", sent.stage());
  if (st.ok()) st = ValidateActor("owner", sent.owner(), sent.has_owner());
  if (st.ok()) st = ValidateText("reassign_reason", sent.reassign_reason(), kMaxReasonBytes);
  if (st.ok()) st = ValidateText("promise", sent.promise(), timeline::kMaxSummaryBytes);
  if (st.ok() && sent.has_promised_by()) {
    st = ValidateFuture("promised_by", sent.promised_by(), now);
  }
  if (st.ok() && !sent.promise().empty() && !sent.has_promised_by()) {
    st = absl::InvalidArgumentError("promised_by: required with promise (by when it is kept)");
  }
  if (st.ok() && sent.has_promised_by() && sent.promise().empty()) {
    st = absl::InvalidArgumentError("promise: required with promised_by (what was promised)");
  }
  if (st.ok()) st = ValidateText("note", sent.note(), kMaxNoteBytes);
  if (st.ok()) st = ValidateToken("request_id", sent.request_id(), timeline::kMaxRefIdBytes, true);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (st.ok() && sent.stage().empty() && !sent.has_owner() && !sent.has_promised_by() &&
      sent.note().empty()) {
    st = absl::InvalidArgumentError(
        "stage, owner, promise, note: nothing to change; set at least one");
  }
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::UpdateCaseRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(
      absl::StrCat("cu:", req.request_id().empty() ? NewRandomId("") : req.request_id()));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CASE_UPDATE);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  std::vector<std::string> what;
  auto& attrs = *event->mutable_attributes();
  if (!req.stage().empty()) {
    what.push_back(absl::StrCat("stage ", req.stage()));
    attrs["stage"] = req.stage();
  }
  if (req.has_owner()) {
    what.push_back(absl::StrCat("owner ", ActorName(req.owner())));
    attrs["owner"] = ActorName(req.owner());
    if (!req.reassign_reason().empty()) attrs["reassign_reason"] = req.reassign_reason();
  }
  if (req.has_promised_by()) {
    what.push_back(absl::StrCat("promise \"", req.promise(), "\""));
    attrs["promise"] = req.promise();
    attrs["promised_by"] = google::protobuf::util::TimeUtil::ToString(req.promised_by());
  }
  if (!req.note().empty()) what.push_back("note");
  event->set_summary(absl::StrCat("case updated: ", absl::StrJoin(what, ", ")));
  event->set_body(req.note());
  event->set_case_id(req.case_id());
  event->set_visibility(req.visibility());
  lua::EngagementCaseUpdate call;
  call.case_id = req.case_id();
  call.stage = req.stage();
  call.owner_type = static_cast<int>(req.owner().type());
  call.owner_id = req.owner().id();
  call.reason = req.reassign_reason();
  call.promise = req.promise();
  call.promised_by_ms = req.has_promised_by() ? ToMillis(req.promised_by()) : 0;
  call.note = req.note();
  call.note_visibility = static_cast<int>(req.visibility());
  call.actor_type = static_cast<int>(req.actor().type());
  call.actor_id = req.actor().id();
  call.tenant = req.tenant();
  call.max_owner_history = kMaxOwnerHistory;
  SetEvent(*event, &call);
  std::string id = req.case_id();
  ReadStages(
      ctx_.client, req.tenant(), deadline,
      [this, req, id, event, call = std::move(call), now, deadline,
       done = std::move(done)](absl::StatusOr<std::string> stages) mutable {
        if (!stages.ok()) return done(stages.status());
        call.stages = *stages;
        RunCustomerScript(
            ctx_, req.tenant(), req.customer(), false, std::move(call), now, deadline,
            [id, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
              CaseReply<v1::UpdateCaseResponse>(
                  id, std::move(r), event, done,
                  [](v1::UpdateCaseResponse* resp, bool again) { resp->set_duplicate(again); });
            });
      });
}

void CaseStore::Resolve(const v1::ResolveCaseRequest& sent, absl::Time deadline,
                        Callback<v1::ResolveCaseResponse> done) {
  int64_t now = NowMillis();
  absl::Status st = ValidateTenant(sent.tenant());
  if (st.ok()) st = ValidateCaseId(sent.case_id(), false);
  if (st.ok()) st = ValidateActor("actor", sent.actor(), true);
  if (st.ok()) st = ValidateChannel("channel", sent.channel(), true);
  if (st.ok()) st = ValidateText("resolution", sent.resolution(), kMaxReasonBytes);
  if (st.ok()) st = ValidateVisibility("visibility", sent.visibility());
  if (!st.ok()) return done(st);
  // Masked once, after validation (limits apply to the text as sent): everything below is
  // stored and answered from the masked copy.
  const v1::ResolveCaseRequest req = privacy::MaskedForStorage(ctx_.redactor, sent);
  auto event = std::make_shared<v1::Event>();
  event->set_event_id(absl::StrCat("cr:", req.case_id()));
  event->set_channel(req.channel());
  event->set_kind(v1::EVENT_KIND_CASE_RESOLVED);
  *event->mutable_occurred_at() = FromMillis(now);
  *event->mutable_actor() = req.actor();
  event->set_summary(req.resolution().empty() ? std::string("case resolved")
                                              : absl::StrCat("case resolved: ", req.resolution()));
  event->set_case_id(req.case_id());
  event->set_visibility(req.visibility());
  std::string id = req.case_id();
  lua::EngagementCaseResolve call;
  call.case_id = id;
  call.resolution = req.resolution();
  call.tenant = req.tenant();
  SetEvent(*event, &call);
  RunCustomerScript(
      ctx_, req.tenant(), req.customer(), false, std::move(call), now, deadline,
      [id, event, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
        CaseReply<v1::ResolveCaseResponse>(
            id, std::move(r), event, done,
            [](v1::ResolveCaseResponse* resp, bool again) { resp->set_duplicate(again); });
      });
}

void CaseStore::Get(const v1::GetCaseRequest& req, absl::Time deadline, Callback<v1::Case> done) {
  absl::Status st = ValidateTenant(req.tenant());
  if (st.ok()) st = ValidateCaseId(req.case_id(), false);
  absl::StatusOr<v1::Audience> audience =
      st.ok() ? timeline::ReaderAudience("audience", req.audience()) : st;
  if (!audience.ok()) return done(audience.status());
  std::string id = req.case_id();
  v1::Audience reader = *audience;
  lua::EngagementCaseGet call;
  call.case_id = id;
  RunCustomerScript(ctx_, req.tenant(), req.customer(), false, std::move(call), NowMillis(),
                    deadline,
                    [id, reader, done = std::move(done)](absl::StatusOr<ScriptResult> r) mutable {
                      if (!r.ok()) return done(r.status());
                      absl::StatusOr<Record> rec = ParseRecord(r->reply.str);
                      if (!rec.ok()) return done(rec.status());
                      v1::Case c = CaseFromRecord(id, r->customer_id, *rec);
                      if (!timeline::VisibleTo(c.last_note_visibility(), reader)) {
                        c.clear_last_note();
                        c.clear_last_note_visibility();
                      }
                      done(std::move(c));
                    });
}

void CaseStore::SetJourney(const v1::SetJourneyRequest& req, absl::Time deadline,
                           Callback<v1::Journey> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  if (req.stages().empty() || req.stages_size() > kMaxStages) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("stages: 1-", kMaxStages, " stages, in journey order")));
  }
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < req.stages_size(); ++i) {
    std::string f = absl::StrCat("stages[", i, "]");
    if (absl::Status st = ValidateStage(f, req.stages(i)); !st.ok()) return done(st);
    if (!seen.insert(req.stages(i)).second) {
      return done(absl::InvalidArgumentError(absl::StrCat(f, ": repeats an earlier stage")));
    }
  }
  SetStages(ctx_.client, req.tenant(),
            std::vector<std::string>(req.stages().begin(), req.stages().end()), deadline,
            /*attempts=*/3, std::move(done));
}

void CaseStore::GetJourney(const v1::GetJourneyRequest& req, absl::Time deadline,
                           Callback<v1::Journey> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  ctx_.client->Command({"GET", keys::TenantKeys(req.tenant()).journey_stages()}, deadline,
                       [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                         if (!r.ok()) return done(r.status());
                         v1::Journey j;
                         if (!r->is_nil()) {
                           for (absl::string_view s : absl::StrSplit(r->str, '\n')) {
                             if (!s.empty()) j.add_stages(std::string(s));
                           }
                         }
                         done(std::move(j));
                       });
}

void CaseStore::GetJourneyStats(const v1::GetJourneyStatsRequest& req, absl::Time deadline,
                                Callback<v1::GetJourneyStatsResponse> done) {
  if (absl::Status st = ValidateTenant(req.tenant()); !st.ok()) return done(st);
  ReadJourneyStats(ctx_.client, req.tenant(), deadline, std::move(done));
}

}  // namespace onestory::engagement
