// The unmerge: its start (Unmerge) and its steps: lock, return, remove, identifiers, release,
// finish (merge_engine.h describes them).
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
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/merge_move_index.h"
#include "libs/lua/merge_release_notify.h"
#include "libs/lua/merge_release_source.h"
#include "libs/lua/merge_remove.h"
#include "libs/lua/merge_remove_chunk.h"
#include "libs/lua/merge_restore.h"
#include "libs/lua/merge_return.h"
#include "libs/merge/merge_engine.h"
#include "libs/merge/merge_record.h"
#include "libs/merge/merge_run.h"
#include "libs/merge/profile_merge.h"
#include "libs/outbox/outbox.h"
#include "libs/privacy/free_text.h"

namespace onestory::merge {

using redis::Reply;

void MergeEngine::Unmerge(const std::string& tenant, const std::string& merge_id,
                          const std::string& reason, const v1::Actor& actor, absl::Time deadline,
                          Callback<v1::MergeRecord> done) {
  if (absl::Status st = ValidateTenant(tenant); !st.ok()) return done(st);
  if (absl::Status st = ValidateCustomerId("merge_id", merge_id); !st.ok()) return done(st);
  if (absl::Status st = ValidateReason(reason); !st.ok()) return done(st);
  if (absl::Status st = ValidateActor(actor); !st.ok()) return done(st);
  client_->Command(
      {"HMGET", keys::MergeKey(tenant, merge_id), "rec", "step"}, deadline,
      [this, tenant, merge_id, reason, actor, deadline,
       done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        absl::StatusOr<StoredRecord> stored = ParseStoredRecord(merge_id, *r);
        if (!stored.ok()) {
          return done(absl::NotFoundError(absl::StrCat("merge_id: no merge ", merge_id)));
        }
        v1::MergeRecord& rec = stored->record;
        switch (rec.state()) {
          case v1::MergeRecord::STATE_MERGING:
            return done(absl::FailedPreconditionError(absl::StrCat(
                "merge_id: merge ", merge_id, " is still running; unmerge it once it is done")));
          case v1::MergeRecord::STATE_UNMERGED:
            return done(absl::FailedPreconditionError(
                absl::StrCat("merge_id: merge ", merge_id, " was already unmerged")));
          case v1::MergeRecord::STATE_UNMERGING:
            return Resume(tenant, merge_id, deadline, std::move(done));
          default:
            break;
        }
        auto run = std::make_shared<Run>();
        run->tenant = tenant;
        run->deadline = deadline;
        run->original_record = std::move(stored->serialized);
        run->record = std::move(rec);
        run->record.set_state(v1::MergeRecord::STATE_UNMERGING);
        // The reason is masked like every free-text field (the record's own, masked when the
        // merge started, is not masked again).
        v1::MergeRecord unmerge;
        unmerge.set_unmerge_reason(reason);
        privacy::MaskFreeText(privacy::OrCardsOnly(redactor_), &unmerge);
        run->record.set_unmerge_reason(unmerge.unmerge_reason());
        *run->record.mutable_unmerged_by() = actor;
        run->done = std::move(done);
        // Refuse what the locks would refuse before writing anything.
        auto b = Barrier::Make(2, [this, run](absl::Status st) {
          if (!st.ok()) return run->done(st);
          Log(LogLevel::kInfo, "unmerge.started",
              {{"tenant", run->tenant},
               {"merge_id", run->id()},
               {"source", run->source()},
               {"target", run->target()}});
          client_->Command(
              {"SADD", keys::PendingMergesKey(), PendingMember(run->tenant, run->id())},
              run->deadline, [this, run](absl::StatusOr<Reply> r) {
                if (!r.ok()) return run->done(r.status());
                Step(run, kULock);
              });
        });
        client_->Command(
            {"HMGET", run->source_keys().profile(), "merged_into", "merge_id", "merge_lock"},
            deadline, [run, b](absl::StatusOr<Reply> r) {
              if (!r.ok()) return b->Arrive(r.status());
              const auto& f = r->elements;
              if (f.size() != 3 || f[0].str != run->target() || f[1].str != run->id()) {
                return b->Arrive(absl::FailedPreconditionError(absl::StrCat(
                    "merge_id: customer ", run->source(), " is no longer merged by ", run->id())));
              }
              if (f[2].is_string()) {
                return b->Arrive(absl::AbortedError(absl::StrCat("customer ", run->source(),
                                                                 " is held by merge ", f[2].str,
                                                                 "; retry shortly")));
              }
              b->Arrive(absl::OkStatus());
            });
        client_->Command(
            {"HMGET", run->target_keys().profile(), "merged_into", "merge_id", "merge_lock"},
            deadline, [run, b](absl::StatusOr<Reply> r) {
              if (!r.ok()) return b->Arrive(r.status());
              const auto& f = r->elements;
              if (f.size() == 3 && f[0].is_string()) {
                return b->Arrive(absl::FailedPreconditionError(
                    absl::StrCat("merge_id: the target ", run->target(), " was since merged into ",
                                 f[0].str, " by merge ", f[1].str, "; unmerge that one first")));
              }
              if (f.size() == 3 && f[2].is_string()) {
                return b->Arrive(absl::AbortedError(absl::StrCat("customer ", run->target(),
                                                                 " is held by merge ", f[2].str,
                                                                 "; retry shortly")));
              }
              b->Arrive(absl::OkStatus());
            });
      });
}

void MergeEngine::UnLock(std::shared_ptr<Run> run) {
  auto abort = [this, run](absl::Status status) {
    // Refused: the merge stays as it was.
    ReleaseLocks(run, [this, run, status] {
      run->step = kDone;
      if (run->original_record.empty()) {  // resumed by recovery: rebuild the record as it was
        run->record.set_state(v1::MergeRecord::STATE_MERGED);
        run->record.clear_unmerge_reason();
        run->record.clear_unmerged_by();
        run->original_record = run->record.SerializeAsString();
      }
      std::vector<std::string> cmd = {"HSET",  keys::MergeKey(run->tenant, run->id()),
                                      "rec",   run->original_record,
                                      "step",  absl::StrCat(kDone),
                                      "phase", "merge"};
      client_->Command(std::move(cmd), run->deadline, [this, run, status](absl::StatusOr<Reply>) {
        client_->Command({"SREM", keys::PendingMergesKey(), PendingMember(run->tenant, run->id())},
                         run->deadline,
                         [run, status](absl::StatusOr<Reply>) { run->done(status); });
      });
    });
  };
  LockBoth(
      run, "unmerge-source", "unmerge-target", [this, run] { Step(run, kUReturn); }, abort);
}

void MergeEngine::Return(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  ReadStream(client_, tk.timeline(), run->deadline,
             [this, run, sk](absl::StatusOr<std::vector<Entry>> t) {
               if (!t.ok()) return Fail(run, t.status());
               run->target_entries = *std::move(t);
               std::vector<const Entry*> tagged;
               for (const Entry& e : run->target_entries) {
                 if (HasTag(e.tag, run->id())) tagged.push_back(&e);
               }
               size_t tagged_count = tagged.size();
               size_t chunks = (tagged.size() + kWriteChunkEntries - 1) / kWriteChunkEntries;
               auto b = Barrier::Make(chunks, [this, run, tagged_count](absl::Status st) {
                 if (!st.ok()) return Fail(run, st);
                 // Counted from the target, not from what this run appended, so a rerun after a
                 // crash counts the same: the merge's tagged events less the source's own.
                 run->record.set_events_returned(std::max<int64_t>(
                     0, static_cast<int64_t>(tagged_count) - run->record.events_moved()));
                 ReturnEngagement(run);
               });
               // Chunks are independent (each appends what the source lacks), so they run together;
               // the source's timeline order among returned events follows their order here.
               for (size_t c = 0; c < chunks; ++c) {
                 lua::MergeReturn give_back;
                 give_back.timeline = sk.timeline();
                 give_back.dedup = sk.dedup();
                 for (size_t i = c * kWriteChunkEntries;
                      i < std::min(tagged.size(), (c + 1) * kWriteChunkEntries); ++i) {
                   give_back.events.push_back(tagged[i]->event.event_id());
                   give_back.events.push_back(tagged[i]->blob);
                   give_back.events.push_back(AppendedMs(*tagged[i]));
                   give_back.events.push_back(WithoutTag(tagged[i]->tag, run->id()));
                 }
                 client_->Fcall(give_back, run->deadline,
                                [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
               }
             });
}

void MergeEngine::ReturnEngagement(std::shared_ptr<Run> run) {
  // Both customers are held: their outboxes are drained first, so the due-promise index holds
  // what the target's cases promise (the records going back move those promises, and only
  // those).
  outbox::DrainAll(
      client_, run->tenant, {run->source(), run->target()}, run->deadline,
      [this, run](absl::Status st) {
        if (!st.ok()) return Fail(run, st);
        ReadEngagement(
            client_, run->tenant, run->target(), EngagementParts{.records = true}, run->deadline,
            [this, run](absl::StatusOr<std::vector<std::string>> pairs) {
              if (!pairs.ok()) return Fail(run, pairs.status());
              keys::CustomerKeys sk = run->source_keys();
              // Only the records this merge brought (their chain ends with it) are copied.
              StageEngagement(
                  client_, sk, run->id(), absl::StrCat(run->id(), ":restored"), run->id(),
                  *std::move(pairs), run->deadline, [this, run, sk](absl::Status st) {
                    if (!st.ok()) return Fail(run, st);
                    lua::MergeRestore restore;
                    restore.merge_state = sk.merge_state();
                    restore.staging = sk.merge_staging_engagement(run->id());
                    restore.profile = sk.profile();
                    restore.outbox = sk.outbox();
                    restore.conversation_records = sk.conversation_records();
                    restore.cases = sk.cases();
                    restore.facts = sk.facts();
                    restore.merge_id = run->id();
                    restore.source_id = run->source();
                    restore.target_id = run->target();
                    restore.tenant = run->tenant;
                    client_->Fcall(restore, run->deadline, [this, run](absl::StatusOr<Reply> r) {
                      if (!r.ok()) return Fail(run, r.status());
                      // The cases' journey entries and promises moved back through the
                      // source's outbox: marked before going on, drained after.
                      outbox::Settle(client_, run->tenant, run->source(), run->deadline,
                                     [this, run](absl::Status st) {
                                       if (!st.ok()) return Fail(run, st);
                                       Step(run, kURemove);
                                     });
                    });
                  });
            });
      });
}

void MergeEngine::Remove(std::shared_ptr<Run> run) {
  // What merge_remove takes away from the target besides the records: the source's contacts
  // and sentiment counts, staged into the target's slot.
  ReadEngagement(client_, run->tenant, run->source(),
                 EngagementParts{.contacts = true, .signals = true}, run->deadline,
                 [this, run](absl::StatusOr<std::vector<std::string>> pairs) {
                   if (!pairs.ok()) return Fail(run, pairs.status());
                   StageEngagement(client_, run->target_keys(), run->id(),
                                   absl::StrCat(run->id(), ":unmerged"), "", *std::move(pairs),
                                   run->deadline, [this, run](absl::Status st) {
                                     if (!st.ok()) return Fail(run, st);
                                     RemoveStaged(run);
                                   });
                 });
}

void MergeEngine::RemoveStaged(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys();
  auto with_entries = [this, run, tk]() {
    std::vector<std::pair<std::string, std::string>> removed;
    std::vector<const Entry*> kept;
    for (const Entry& e : run->target_entries) {
      if (HasTag(e.tag, run->id())) {
        removed.emplace_back(e.id, e.event.event_id());
      } else {
        kept.push_back(&e);
      }
    }
    auto derived = std::make_shared<Derived>(Recompute(kept));
    // The events first, in chunks (each a short call; a rerun finds them gone), then one
    // call restores the profile and sets the recomputed activity and conversations.
    size_t chunks = (removed.size() + kWriteChunkEntries - 1) / kWriteChunkEntries;
    auto b = Barrier::Make(chunks, [this, run, tk, derived](absl::Status st) {
      if (!st.ok()) return Fail(run, st);
      auto prior = std::make_shared<std::string>();
      auto read = Barrier::Make(1, [this, run, tk, derived, prior](absl::Status st) {
        if (!st.ok()) return Fail(run, st);
        lua::MergeRemove remove;
        remove.merge_state = tk.merge_state();
        remove.profile = tk.profile();
        remove.conversations = tk.conversations();
        remove.staging = tk.merge_staging_engagement(run->id());
        remove.conversation_records = tk.conversation_records();
        remove.cases = tk.cases();
        remove.facts = tk.facts();
        remove.contacts = tk.contacts();
        remove.contact_channels = tk.contact_channels();
        remove.signals = tk.signals();
        remove.merge_id = run->id();
        std::vector<Prior> priors = ParsePriors(*prior);
        remove.sets.push_back(absl::StrCat(priors.size()));
        for (const Prior& p : priors) {
          remove.sets.push_back(p.field);
          remove.sets.push_back(p.new_value);
          remove.sets.push_back(p.had ? "1" : "0");
          remove.sets.push_back(p.old_value);
        }
        AppendCounted(&remove.sets, derived->activity);
        AppendCounted(&remove.sets, derived->conversations);
        client_->Fcall(remove, run->deadline, [this, run](absl::StatusOr<Reply> r) {
          if (!r.ok()) return Fail(run, r.status());
          run->target_entries.clear();
          Step(run, kUIdentifiers);
        });
      });
      client_->Command({"HGET", tk.merge_state(), absl::StrCat(run->id(), ":prior")}, run->deadline,
                       [read, prior](absl::StatusOr<Reply> r) {
                         if (r.ok() && r->is_string()) *prior = r->str;
                         read->Arrive(r.status());
                       });
    });
    for (size_t c = 0; c < chunks; ++c) {
      lua::MergeRemoveChunk chunk;
      chunk.timeline = tk.timeline();
      chunk.dedup = tk.dedup();
      chunk.merge_state = tk.merge_state();
      chunk.merge_id = run->id();
      for (size_t i = c * kWriteChunkEntries;
           i < std::min(removed.size(), (c + 1) * kWriteChunkEntries); ++i) {
        chunk.pairs.push_back(removed[i].first);
        chunk.pairs.push_back(removed[i].second);
      }
      client_->Fcall(chunk, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
    }
  };
  if (!run->target_entries.empty()) return with_entries();
  ReadStream(client_, tk.timeline(), run->deadline,
             [this, run, with_entries](absl::StatusOr<std::vector<Entry>> t) mutable {
               if (!t.ok()) return Fail(run, t.status());
               run->target_entries = *std::move(t);
               with_entries();
             });
}

void MergeEngine::ReturnIdentifiers(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command(
      {"HGETALL", tk.identifiers()}, run->deadline, [this, run, sk, tk](absl::StatusOr<Reply> ids) {
        if (!ids.ok()) return Fail(run, ids.status());
        auto fields = std::make_shared<std::vector<std::string>>();
        for (size_t i = 0; i + 1 < ids->elements.size(); i += 2) {
          v1::LinkEvidence e;
          if (identity::DecodeEvidence(ids->elements[i + 1].str, &e) &&
              absl::EndsWith(absl::StrCat(",", e.merge_id()), absl::StrCat(",", run->id()))) {
            fields->push_back(ids->elements[i].str);
          }
        }
        auto b = Barrier::Make(fields->size(), [this, run, sk, tk, fields](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          auto after = [this, run](absl::StatusOr<Reply> r) {
            if (!r.ok()) return Fail(run, r.status());
            Step(run, kURelease);
          };
          if (fields->empty()) return after(Reply{});
          std::vector<std::string> cmd = {"HDEL", tk.identifiers()};
          cmd.insert(cmd.end(), fields->begin(), fields->end());
          client_->Command(std::move(cmd), run->deadline, std::move(after));
        });
        for (const std::string& field : *fields) {
          client_->Fcall(MoveIndexCall(run->tenant, field, run->source(), run->target()),
                         run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
        }
      });
}

void MergeEngine::Release(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys();
  // The source's list still holds every identifier it had; drop those it no longer owns
  // (unlinked from the target while merged).
  client_->Command(
      {"HKEYS", sk.identifiers()}, run->deadline, [this, run, sk](absl::StatusOr<Reply> ids) {
        if (!ids.ok()) return Fail(run, ids.status());
        auto owners = std::make_shared<std::vector<std::string>>(ids->elements.size());
        auto fields = std::make_shared<std::vector<std::string>>();
        for (const Reply& f : ids->elements) fields->push_back(f.str);
        auto b = Barrier::Make(fields->size(), [this, run, sk, owners, fields](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          std::vector<std::string> cmd = {"HDEL", sk.identifiers()};
          for (size_t i = 0; i < fields->size(); ++i) {
            if ((*owners)[i] != run->source()) cmd.push_back((*fields)[i]);
          }
          auto next = [this, run, sk](absl::StatusOr<Reply> r) {
            if (!r.ok()) return Fail(run, r.status());
            ReadStream(client_, sk.timeline(), run->deadline,
                       [this, run, sk](absl::StatusOr<std::vector<Entry>> s) {
                         if (!s.ok()) return Fail(run, s.status());
                         std::vector<const Entry*> all;
                         for (const Entry& e : *s) all.push_back(&e);
                         Derived d = Recompute(all);
                         lua::MergeReleaseSource release;
                         release.profile = sk.profile();
                         release.conversations = sk.conversations();
                         release.lock = run->id();
                         AppendCounted(&release.sets, d.activity);
                         AppendCounted(&release.sets, d.conversations);
                         client_->Fcall(release, run->deadline,
                                        [this, run](absl::StatusOr<Reply> r) {
                                          if (!r.ok()) return Fail(run, r.status());
                                          Step(run, kUFinish);
                                        });
                       });
          };
          if (cmd.size() == 2) return next(Reply{});
          client_->Command(std::move(cmd), run->deadline, std::move(next));
        });
        for (size_t i = 0; i < fields->size(); ++i) {
          const std::string& field = (*fields)[i];
          size_t colon = field.find(':');
          client_->Command(
              {"GET", keys::IdentifierKey(run->tenant,
                                          keys::IdentifierTypeFromName(field.substr(0, colon)),
                                          field.substr(colon + 1))},
              run->deadline, [b, owners, i](absl::StatusOr<Reply> r) {
                if (r.ok() && r->is_string()) (*owners)[i] = r->str;
                b->Arrive(r.status());
              });
        }
      });
}

void MergeEngine::UnFinish(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys();
  client_->Fcall(ReleaseNotifyCall(tk, run->id(), "unmerged"), run->deadline,
                 [this, run](absl::StatusOr<Reply> r) {
                   if (!r.ok()) return Fail(run, r.status());
                   run->record.set_state(v1::MergeRecord::STATE_UNMERGED);
                   *run->record.mutable_unmerged_at() = FromMillis(NowMillis());
                   Log(LogLevel::kInfo, "unmerge.done",
                       {{"tenant", run->tenant},
                        {"merge_id", run->id()},
                        {"source", run->source()},
                        {"target", run->target()},
                        {"events_returned", absl::StrCat(run->record.events_returned())}});
                   Step(run, kDone);
                 });
}

}  // namespace onestory::merge
