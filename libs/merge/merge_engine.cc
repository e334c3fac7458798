// MergeEngine's entry points and its step machine: Merge and its start, Resume, Drive, Step,
// Fail and History. The steps are in merge_steps.cc and unmerge_steps.cc, the recovery pass in
// recovery.cc.
#include "libs/merge/merge_engine.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/identity_store.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/merge_abandon.h"
#include "libs/merge/merge_record.h"
#include "libs/merge/merge_run.h"
#include "libs/privacy/free_text.h"

namespace onestory::merge {
namespace {

using redis::Reply;

constexpr int kMaxReasonBytes = 1024;
constexpr int kMaxTakePaths = 64;

}  // namespace

const char* StepName(int step) {
  switch (step) {
    case kLock:
      return "merge.lock";
    case kStage:
      return "merge.stage";
    case kSwap:
      return "merge.swap";
    case kIdentifiers:
      return "merge.identifiers";
    case kMark:
      return "merge.mark";
    case kFinish:
      return "merge.finish";
    case kULock:
      return "unmerge.lock";
    case kUReturn:
      return "unmerge.return";
    case kURemove:
      return "unmerge.remove";
    case kUIdentifiers:
      return "unmerge.identifiers";
    case kURelease:
      return "unmerge.release";
    case kUFinish:
      return "unmerge.finish";
    default:
      return "done";
  }
}

absl::Status ValidateActor(const v1::Actor& actor) {
  if (actor.type() == v1::Actor::TYPE_UNSPECIFIED || !v1::Actor::Type_IsValid(actor.type())) {
    return absl::InvalidArgumentError("actor.type: required (CUSTOMER, AGENT, BOT or SYSTEM)");
  }
  bool needs_id = actor.type() == v1::Actor::TYPE_AGENT || actor.type() == v1::Actor::TYPE_BOT;
  if (needs_id && actor.id().empty()) {
    return absl::InvalidArgumentError("actor.id: required for an agent or a bot");
  }
  // As for an event's actor: printable ASCII without spaces.
  return ValidateToken("actor.id", actor.id(), 128, /*allow_empty=*/true);
}

absl::Status ValidateReason(absl::string_view reason) {
  if (reason.empty()) return absl::InvalidArgumentError("reason: required");
  return ValidateText("reason", reason, kMaxReasonBytes);
}

void MergeEngine::Merge(const MergeInput& in, absl::Time deadline, Callback<Result> done) {
  if (absl::Status st = ValidateTenant(in.tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("source_customer_id", in.source_customer_id); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateCustomerId("target_customer_id", in.target_customer_id); !st.ok()) {
    return done(st);
  }
  if (in.source_customer_id == in.target_customer_id) {
    return done(absl::InvalidArgumentError(
        "target_customer_id: must differ from source_customer_id (a customer cannot be merged "
        "into itself)"));
  }
  if (absl::Status st = ValidateReason(in.reason); !st.ok()) return done(st);
  if (absl::Status st = ValidateActor(in.actor); !st.ok()) return done(st);
  if (static_cast<int>(in.take_from_source.size()) > kMaxTakePaths) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("take_from_source: at most ", kMaxTakePaths, " paths")));
  }
  for (size_t i = 0; i < in.take_from_source.size(); ++i) {
    const std::string& p = in.take_from_source[i];
    bool ok = p == "display_name" || p == "language" || p == "tier" ||
              (absl::StartsWith(p, "attributes.") && p.size() > strlen("attributes.") &&
               p.size() <= strlen("attributes.") + identity::kMaxAttributeKeyBytes &&
               ValidateText("take_from_source", p, 512, false).ok());
    if (!ok) {
      return done(absl::InvalidArgumentError(
          absl::StrCat("take_from_source[", i, "]: unknown path '", p,
                       "'; allowed: display_name, language, tier, attributes.<key>")));
    }
  }
  StartMerge(in, deadline, std::move(done));
}

void MergeEngine::StartMerge(const MergeInput& in, absl::Time deadline,
                             Callback<Result> done_once) {
  // Shared: the branches below each finish the call through one of several paths.
  auto done = std::make_shared<Callback<Result>>(std::move(done_once));
  keys::CustomerKeys sk(in.tenant, in.source_customer_id);
  keys::CustomerKeys tk(in.tenant, in.target_customer_id);
  client_->Command(
      {"HMGET", sk.profile(), "created_at", "merged_into", "merge_id", "merge_lock"}, deadline,
      [this, in, tk, deadline, done](absl::StatusOr<Reply> s) {
        if (!s.ok()) return (*done)(s.status());
        const auto& f = s->elements;
        if (f.size() != 4) return (*done)(absl::InternalError("unexpected HMGET reply"));
        if (f[0].is_nil()) {
          return (*done)(absl::NotFoundError(
              absl::StrCat("source_customer_id: customer ", in.source_customer_id, " not found")));
        }
        // Finishes the merge of this very pair (a retry); a merge of another pair holding the
        // source is left to its own caller: ABORTED.
        auto resume = [this, in, deadline, done](const std::string& merge_id, bool finished) {
          Resume(
              in.tenant, merge_id, deadline,
              [in, merge_id, finished, done](absl::StatusOr<v1::MergeRecord> r) {
                // The merge that held the source ended between the two reads: one that is
                // refused or given up releases its locks, then deletes its record.
                if (!finished && absl::IsNotFound(r.status())) {
                  return (*done)(absl::AbortedError(absl::StrCat(
                      "source_customer_id: customer ", in.source_customer_id, " was held by merge ",
                      merge_id, ", which has just ended; retry")));
                }
                if (!r.ok()) return (*done)(r.status());
                (*done)(Result{*std::move(r), finished});
              },
              std::make_pair(in.source_customer_id, in.target_customer_id));
        };
        if (f[1].is_string()) {
          if (f[1].str == in.target_customer_id) return resume(f[2].str, true);
          return (*done)(absl::FailedPreconditionError(
              absl::StrCat("source_customer_id: customer ", in.source_customer_id,
                           " was already merged into ", f[1].str, " (merge ", f[2].str, ")")));
        }
        if (f[3].is_string()) {
          // A merge holds the source: finish it when it is this one (a retry), else refuse.
          return resume(f[3].str, false);
        }
        client_->Command(
            {"HMGET", tk.profile(), "created_at", "merged_into", "merge_id"}, deadline,
            [this, in, deadline, done](absl::StatusOr<Reply> t) {
              if (!t.ok()) return (*done)(t.status());
              const auto& g = t->elements;
              if (g.size() != 3) return (*done)(absl::InternalError("unexpected HMGET reply"));
              if (g[0].is_nil()) {
                return (*done)(absl::NotFoundError(absl::StrCat(
                    "target_customer_id: customer ", in.target_customer_id, " not found")));
              }
              if (g[1].is_string()) {
                return (*done)(absl::FailedPreconditionError(absl::StrCat(
                    "target_customer_id: customer ", in.target_customer_id, " was merged into ",
                    g[1].str, " (merge ", g[2].str, "); merge into ", g[1].str, " instead")));
              }
              auto run = std::make_shared<Run>();
              run->tenant = in.tenant;
              run->deadline = deadline;
              v1::MergeRecord& rec = run->record;
              rec.set_merge_id(NewRandomId("mrg_"));
              rec.set_source_customer_id(in.source_customer_id);
              rec.set_target_customer_id(in.target_customer_id);
              rec.set_state(v1::MergeRecord::STATE_MERGING);
              rec.set_reason(in.reason);
              *rec.mutable_actor() = in.actor;
              rec.set_automatic(in.automatic);
              *rec.mutable_started_at() = FromMillis(NowMillis());
              for (const auto& p : in.take_from_source) rec.add_take_from_source(p);
              // Its free text (the reason) is masked once, here, before any copy is stored.
              privacy::MaskFreeText(privacy::OrCardsOnly(redactor_), &rec);
              run->step = kLock;
              run->done = [done](absl::StatusOr<v1::MergeRecord> r) {
                if (!r.ok()) return (*done)(r.status());
                (*done)(Result{*std::move(r), false});
              };
              Log(LogLevel::kInfo, "merge.started",
                  {{"tenant", in.tenant},
                   {"merge_id", rec.merge_id()},
                   {"source", in.source_customer_id},
                   {"target", in.target_customer_id}});
              // The record first, then the pending entry: a record nobody lists holds no locks
              // yet and is harmless.
              client_->Command(
                  {"HSET", keys::MergeKey(run->tenant, run->id()), "rec", rec.SerializeAsString(),
                   "step", absl::StrCat(kLock), "phase", "merge", "updated_at",
                   absl::StrCat(NowMillis())},
                  deadline, [this, run](absl::StatusOr<Reply> r) {
                    if (!r.ok()) return run->done(r.status());
                    client_->Command(
                        {"SADD", keys::PendingMergesKey(), PendingMember(run->tenant, run->id())},
                        run->deadline, [this, run](absl::StatusOr<Reply> r) {
                          if (!r.ok()) return run->done(r.status());
                          Drive(run);
                        });
                  });
            });
      });
}

void MergeEngine::Resume(const std::string& tenant, const std::string& merge_id,
                         absl::Time deadline, Callback<v1::MergeRecord> done,
                         std::optional<std::pair<std::string, std::string>> pair) {
  client_->Command(
      {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "step"}, deadline,
      [this, tenant, merge_id, deadline, pair,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        absl::StatusOr<StoredRecord> stored = ParseStoredRecord(merge_id, *r);
        if (!stored.ok()) return done(stored.status());
        auto run = std::make_shared<Run>();
        run->tenant = tenant;
        run->deadline = deadline;
        run->done = std::move(done);
        run->record = std::move(stored->record);
        run->step = stored->step;
        bool merging = run->record.state() == v1::MergeRecord::STATE_MERGING ||
                       run->record.state() == v1::MergeRecord::STATE_MERGED;
        if (pair && (run->source() != pair->first || run->target() != pair->second || !merging)) {
          return run->done(absl::AbortedError(
              absl::StrCat("customer ", pair->first, " is held by merge ", merge_id,
                           merging ? "" : " (being unmerged)", "; retry shortly")));
        }
        Drive(run);
      });
}

void MergeEngine::Drive(std::shared_ptr<Run> run) {
  if (run->step != kDone) {
    if (absl::Status st = steps::CheckFailpoint(failpoint_, StepName(run->step)); !st.ok()) {
      return run->done(std::move(st));
    }
  }
  switch (run->step) {
    case kLock:
      return Lock(run);
    case kStage:
      return Stage(run);
    case kSwap:
      return Swap(run);
    case kIdentifiers:
      return MoveIdentifiers(run);
    case kMark:
      return Mark(run);
    case kFinish:
      return Finish(run);
    case kULock:
      return UnLock(run);
    case kUReturn:
      return Return(run);
    case kURemove:
      return Remove(run);
    case kUIdentifiers:
      return ReturnIdentifiers(run);
    case kURelease:
      return Release(run);
    case kUFinish:
      return UnFinish(run);
    case kDone:
      return run->done(run->record);
    default:
      return run->done(
          absl::InternalError(absl::StrCat("merge ", run->id(), ": unknown step ", run->step)));
  }
}

// Saves the record with the next step, then runs it.
void MergeEngine::Step(std::shared_ptr<Run> run, int next) {
  run->step = next;
  client_->Fcall(
      SaveStepCall(run->tenant, run->record, run->record.SerializeAsString(), next, NowMillis()),
      run->deadline, [this, run](absl::StatusOr<Reply> r) {
        if (!r.ok()) return Fail(run, r.status());
        if (r->integer == 0) {
          // Another call (a retry, the recovery pass) is further along with this merge.
          return run->done(absl::AbortedError(absl::StrCat(
              "merge ", run->id(), " is being finished by another call; retry shortly")));
        }
        if (run->step != kDone) return Drive(run);
        client_->Command({"SREM", keys::PendingMergesKey(), PendingMember(run->tenant, run->id())},
                         run->deadline, [this, run](absl::StatusOr<Reply> r) {
                           if (!r.ok()) return Fail(run, r.status());
                           Drive(run);
                         });
      });
}

void MergeEngine::Fail(std::shared_ptr<Run> run, absl::Status status) {
  Log(LogLevel::kWarning, "merge.step_failed",
      {{"tenant", run->tenant},
       {"merge_id", run->id()},
       {"step", StepName(run->step)},
       {"error", status.ToString()}});
  bool transient = status.code() == absl::StatusCode::kUnavailable ||
                   status.code() == absl::StatusCode::kDeadlineExceeded ||
                   status.code() == absl::StatusCode::kAborted;
  bool before_swap = run->step == kStage || run->step == kSwap;
  if (transient || !before_swap || run->record.state() != v1::MergeRecord::STATE_MERGING) {
    return run->done(std::move(status));  // a retry or the recovery pass goes on from here
  }
  // A lasting failure before the swap (an undecodable stored event, say): nothing anyone can
  // see has changed yet, so give the merge up instead of holding both customers forever.
  keys::CustomerKeys tk = run->target_keys();
  lua::MergeAbandon abandon;
  abandon.merge_state = tk.merge_state();
  abandon.staging = tk.merge_staging(run->id());
  abandon.staging_dedup = tk.merge_staging_dedup(run->id());
  abandon.staging_remap = tk.merge_staging_remap(run->id());
  abandon.staging_engagement = tk.merge_staging_engagement(run->id());
  abandon.profile = tk.profile();
  abandon.merge_id = run->id();
  client_->Fcall(abandon, run->deadline, [this, run, status](absl::StatusOr<Reply> r) {
    if (!r.ok() || r->integer == 0) return run->done(status);
    Log(LogLevel::kError, "merge.abandoned",
        {{"tenant", run->tenant}, {"merge_id", run->id()}, {"error", status.ToString()}});
    ReleaseLocks(run, [this, run, status] {
      client_->Command(
          {"DEL", keys::MergeKey(run->tenant, run->id())}, run->deadline,
          [this, run, status](absl::StatusOr<Reply>) {
            client_->Command(
                {"SREM", keys::PendingMergesKey(), PendingMember(run->tenant, run->id())},
                run->deadline, [run, status](absl::StatusOr<Reply>) { run->done(status); });
          });
    });
  });
}

void MergeEngine::History(const std::string& tenant, const std::string& customer_id,
                          absl::Time deadline, Callback<std::vector<v1::MergeRecord>> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("customer_id", customer_id); !st.ok()) return done(st);
  keys::CustomerKeys ck(tenant, customer_id);
  // An erased customer's profile is a tombstone holding only erased_at (libs/privacy): it
  // answers NOT_FOUND "was erased" here as on every other read, not an empty history.
  client_->Command(
      {"HMGET", ck.profile(), "created_at", "erased_at"}, deadline,
      [this, tenant, customer_id, ck, deadline,
       done = std::move(done)](absl::StatusOr<Reply> profile) mutable {
        if (!profile.ok()) return done(profile.status());
        if (!profile->is_array() || profile->elements.size() != 2) {
          return done(absl::InternalError("unexpected reply to HMGET of a profile"));
        }
        if (profile->elements[1].is_string()) {
          return done(absl::NotFoundError(absl::StrCat("customer ", customer_id, " was erased")));
        }
        if (!profile->elements[0].is_string()) {
          return done(absl::NotFoundError(absl::StrCat("customer ", customer_id, " not found")));
        }
        client_->Command(
            {"ZREVRANGE", ck.merge_history(), "0", "999"}, deadline,
            [this, tenant, deadline, done = std::move(done)](absl::StatusOr<Reply> ids) mutable {
              if (!ids.ok()) return done(ids.status());
              auto records = std::make_shared<std::vector<v1::MergeRecord>>(ids->elements.size());
              auto shared_done =
                  std::make_shared<Callback<std::vector<v1::MergeRecord>>>(std::move(done));
              auto b = Barrier::Make(ids->elements.size(), [records, shared_done](absl::Status st) {
                if (!st.ok()) return (*shared_done)(st);
                (*shared_done)(std::move(*records));
              });
              for (size_t i = 0; i < ids->elements.size(); ++i) {
                client_->Command({"HGET", keys::MergeKey(tenant, ids->elements[i].str), "rec"},
                                 deadline, [b, records, i](absl::StatusOr<Reply> r) {
                                   if (r.ok() && r->is_string()) {
                                     (*records)[i].ParseFromString(r->str);
                                   }
                                   b->Arrive(r.status());
                                 });
              }
            });
      });
}

}  // namespace onestory::merge
