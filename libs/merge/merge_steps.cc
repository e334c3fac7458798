// The merge's steps: lock, stage, swap, identifiers, mark, finish
// (merge_engine.h describes them).
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/identity/identity_store.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/merge_add_identifiers.h"
#include "libs/lua/merge_lock.h"
#include "libs/lua/merge_mark.h"
#include "libs/lua/merge_move_index.h"
#include "libs/lua/merge_release_notify.h"
#include "libs/lua/merge_stage.h"
#include "libs/lua/merge_stage_remap.h"
#include "libs/lua/merge_swap.h"
#include "libs/lua/merge_unlock.h"
#include "libs/merge/merge_engine.h"
#include "libs/merge/merge_record.h"
#include "libs/merge/merge_run.h"
#include "libs/merge/profile_merge.h"
#include "libs/outbox/outbox.h"

namespace onestory::merge {

using redis::Reply;

void MergeEngine::ReleaseLocks(std::shared_ptr<Run> run, absl::AnyInvocable<void()> then) {
  auto shared_then = std::make_shared<absl::AnyInvocable<void()>>(std::move(then));
  auto b = Barrier::Make(2, [shared_then](absl::Status) { (*shared_then)(); });
  for (const std::string& c : {run->source(), run->target()}) {
    lua::MergeUnlock unlock;
    unlock.profile = keys::CustomerKeys(run->tenant, c).profile();
    unlock.lock = run->id();
    client_->Fcall(unlock, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void MergeEngine::LockBoth(std::shared_ptr<Run> run, const std::string& source_role,
                           const std::string& target_role, absl::AnyInvocable<void()> locked,
                           absl::AnyInvocable<void(absl::Status)> refused) {
  // Lowest customer id first, so two merges of the same pair in opposite directions cannot
  // each hold one lock.
  std::vector<std::pair<std::string, std::string>> order = {{run->source(), source_role},
                                                            {run->target(), target_role}};
  std::sort(order.begin(), order.end());
  struct Callbacks {
    absl::AnyInvocable<void()> locked;
    absl::AnyInvocable<void(absl::Status)> refused;
  };
  auto cbs = std::make_shared<Callbacks>(Callbacks{std::move(locked), std::move(refused)});
  auto lock_one = [this, run, cbs](const std::pair<std::string, std::string>& who,
                                   absl::AnyInvocable<void()> next) {
    lua::MergeLock lock;
    lock.profile = keys::CustomerKeys(run->tenant, who.first).profile();
    lock.customer_id = who.first;
    lock.lock = run->id();
    lock.role = who.second;
    lock.expected_target = run->target();
    lock.merge_id = run->id();
    client_->Fcall(lock, run->deadline,
                   [this, run, cbs, next = std::move(next)](absl::StatusOr<Reply> r) mutable {
                     if (r.ok()) return next();
                     if (r.status().code() == absl::StatusCode::kUnavailable ||
                         r.status().code() == absl::StatusCode::kDeadlineExceeded) {
                       return Fail(run, r.status());  // left for a retry or the recovery pass
                     }
                     cbs->refused(r.status());
                   });
  };
  lock_one(order[0], [lock_one, second = order[1], cbs]() mutable {
    lock_one(second, [cbs] { cbs->locked(); });
  });
}

void MergeEngine::Lock(std::shared_ptr<Run> run) {
  auto abort = [this, run](absl::Status status) {
    // Refused before anything moved: release what this merge holds and forget it.
    ReleaseLocks(run, [this, run, status] {
      client_->Command(
          {"DEL", keys::MergeKey(run->tenant, run->id())}, run->deadline,
          [this, run, status](absl::StatusOr<Reply>) {
            client_->Command(
                {"SREM", keys::PendingMergesKey(), PendingMember(run->tenant, run->id())},
                run->deadline, [run, status](absl::StatusOr<Reply>) {
                  Log(LogLevel::kInfo, "merge.refused",
                      {{"merge_id", run->id()}, {"reason", status.ToString()}});
                  run->done(status);
                });
          });
    });
  };
  LockBoth(
      run, "merge", "merge",
      [this, run, abort]() mutable {
        // Both held: check the limits on frozen customers.
        keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
        client_->Command(
            {"HGETALL", sk.identifiers()}, run->deadline,
            [this, run, abort, tk, sk](absl::StatusOr<Reply> sids) mutable {
              if (!sids.ok()) return Fail(run, sids.status());
              client_->Command(
                  {"HKEYS", tk.identifiers()}, run->deadline,
                  [this, run, abort, tk, sk,
                   sids = *std::move(sids)](absl::StatusOr<Reply> tids) mutable {
                    if (!tids.ok()) return Fail(run, tids.status());
                    std::map<std::string, int> per_type;
                    for (const Reply& f : tids->elements)
                      ++per_type[f.str.substr(0, f.str.find(':'))];
                    run->record.clear_source_identifiers();
                    for (size_t i = 0; i + 1 < sids.elements.size(); i += 2) {
                      const std::string& f = sids.elements[i].str;
                      ++per_type[f.substr(0, f.find(':'))];
                      v1::LinkedIdentifier li;
                      if (identity::LinkedIdentifierFromEntry(f, sids.elements[i + 1].str, &li)) {
                        *run->record.add_source_identifiers() = std::move(li);
                      }
                    }
                    size_t total = tids->elements.size() + sids.elements.size() / 2;
                    if (total > static_cast<size_t>(identity::kMaxIdentifiersPerCustomer)) {
                      return abort(absl::ResourceExhaustedError(absl::StrCat(
                          "the merged customer would have ", total, " identifiers; at most ",
                          identity::kMaxIdentifiersPerCustomer)));
                    }
                    for (const auto& [type, n] : per_type) {
                      if (n > identity::kMaxIdentifiersPerType) {
                        return abort(absl::ResourceExhaustedError(absl::StrCat(
                            "the merged customer would have ", n, " identifiers of type ", type,
                            "; at most ", identity::kMaxIdentifiersPerType)));
                      }
                    }
                    auto lens = std::make_shared<std::vector<int64_t>>(2, 0);
                    auto b = Barrier::Make(2, [this, run, abort, lens](absl::Status st) mutable {
                      if (!st.ok()) return Fail(run, st);
                      int64_t events = (*lens)[0] + (*lens)[1];
                      if (events > kMaxMergeEvents) {
                        return abort(absl::ResourceExhaustedError(
                            absl::StrCat("the merged timeline would hold ", events,
                                         " events; at most ", kMaxMergeEvents, " can be merged")));
                      }
                      Step(run, kStage);
                    });
                    client_->Command({"XLEN", sk.timeline()}, run->deadline,
                                     [b, lens](absl::StatusOr<Reply> r) {
                                       if (r.ok()) (*lens)[0] = r->integer;
                                       b->Arrive(r.status());
                                     });
                    client_->Command({"XLEN", tk.timeline()}, run->deadline,
                                     [b, lens](absl::StatusOr<Reply> r) {
                                       if (r.ok()) (*lens)[1] = r->integer;
                                       b->Arrive(r.status());
                                     });
                  });
            });
      },
      abort);
}

void MergeEngine::Stage(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command(
      {"HGET", tk.merge_state(), absl::StrCat(run->id(), ":swapped")}, run->deadline,
      [this, run, sk, tk](absl::StatusOr<Reply> swapped) {
        if (!swapped.ok()) return Fail(run, swapped.status());
        if (swapped->is_string()) return Step(run, kSwap);  // swapped by an earlier run
        ReadStream(
            client_, tk.timeline(), run->deadline,
            [this, run, sk, tk](absl::StatusOr<std::vector<Entry>> t) {
              if (!t.ok()) return Fail(run, t.status());
              run->target_entries = *std::move(t);
              ReadStream(
                  client_, sk.timeline(), run->deadline,
                  [this, run, tk](absl::StatusOr<std::vector<Entry>> s) {
                    if (!s.ok()) return Fail(run, s.status());
                    run->source_entries = *std::move(s);
                    // Interleave by occurred_at: the target's events keep their order and ids; the
                    // source's (sorted by occurred_at, stable) take ids in the gaps between them.
                    absl::flat_hash_set<std::string> target_ids;
                    for (const Entry& e : run->target_entries)
                      target_ids.insert(e.event.event_id());
                    std::vector<Entry*> src;
                    int64_t skipped = 0;
                    for (Entry& e : run->source_entries) {
                      if (target_ids.contains(e.event.event_id())) {
                        ++skipped;
                        continue;
                      }
                      e.from_source = true;
                      e.tag = WithTag(e.tag, run->id());
                      src.push_back(&e);
                    }
                    // The two timelines are interleaved by occurred_at and each keeps its own
                    // order, so the events after a reader's (remapped) position in either are
                    // exactly those it has not seen. Every entry gets a new id above the target's
                    // newest, in merged order; the old ids of the target's entries are remapped
                    // (see merge_swap), and each entry keeps the time it was first stored in 'a'.
                    StreamId next{0, 0};
                    if (!run->target_entries.empty()) {
                      StreamId last;
                      if (!ParseStreamId(run->target_entries.back().id, &last)) {
                        return Fail(run,
                                    absl::InternalError("bad stream id in the target's timeline"));
                      }
                      next = StreamId{last.ms + 1, 0};
                    } else {
                      next = StreamId{0, 1};
                    }
                    std::vector<Entry*> plan;
                    size_t j = 0;
                    auto place = [&plan, &next](Entry* e) {
                      e->old_id = e->id;
                      e->appended = AppendedMs(*e);
                      e->id = next.str();
                      next = next.Next();
                      plan.push_back(e);
                    };
                    for (Entry& t : run->target_entries) {
                      int64_t occ = ToMillis(t.event.occurred_at());
                      while (j < src.size() && ToMillis(src[j]->event.occurred_at()) < occ) {
                        place(src[j++]);
                      }
                      place(&t);
                    }
                    while (j < src.size()) place(src[j++]);
                    run->record.set_events_moved(static_cast<int64_t>(src.size()));
                    run->record.set_events_skipped(skipped);
                    run->plan = std::move(plan);
                    client_->Command(
                        {"XREVRANGE", tk.merge_staging(run->id()), "+", "-", "COUNT", "1"},
                        run->deadline, [this, run](absl::StatusOr<Reply> last) {
                          if (!last.ok()) return Fail(run, last.status());
                          size_t from = 0;
                          if (!last->elements.empty()) {
                            // An earlier run wrote up to here: continue after it.
                            StreamId written, id;
                            ParseStreamId(last->elements[0].elements[0].str, &written);
                            while (from < run->plan.size() &&
                                   ParseStreamId(run->plan[from]->id, &id) && !(written < id)) {
                              ++from;
                            }
                          }
                          WriteStaging(run, from);
                        });
                  });
            });
      });
}

void MergeEngine::WriteStaging(std::shared_ptr<Run> run, size_t from) {
  if (from >= run->plan.size()) return StageRemap(run);
  keys::CustomerKeys tk = run->target_keys();
  lua::MergeStage stage;
  stage.staging = tk.merge_staging(run->id());
  stage.merge_state = tk.merge_state();
  stage.staging_dedup = tk.merge_staging_dedup(run->id());
  stage.staging_remap = tk.merge_staging_remap(run->id());
  stage.merge_id = run->id();
  size_t bytes = 0, end = from;
  while (end < run->plan.size() && end - from < kWriteChunkEntries && bytes < kWriteChunkBytes) {
    const Entry* e = run->plan[end++];
    stage.entries.push_back(e->id);
    stage.entries.push_back(e->blob);
    stage.entries.push_back(e->tag);
    stage.entries.push_back(e->appended);
    stage.entries.push_back(e->event.event_id());
    // The remap key: a target's old id as is; a source's prefixed with the source's id, which
    // its cursors name.
    stage.entries.push_back(e->from_source ? absl::StrCat(run->source(), "|", e->old_id)
                                           : e->old_id);
    bytes += e->blob.size();
  }
  client_->Fcall(stage, run->deadline, [this, run, end](absl::StatusOr<Reply> r) {
    if (!r.ok()) return Fail(run, r.status());
    if (r->integer == -1) return Step(run, kSwap);  // swapped meanwhile
    WriteStaging(run, end);
  });
}

// Carries the remap entries of earlier merges forward to the new ids: an old id whose event
// is gone (given back by an unmerge) maps to the new id of the nearest earlier event.
void MergeEngine::StageRemap(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys(), sk = run->source_keys();
  auto olds = std::make_shared<std::vector<Reply>>(2);
  auto b = Barrier::Make(2, [this, run, tk, olds](absl::Status st) {
    if (!st.ok()) return Fail(run, st);
    // Old id -> new id, for each side's entries. A source event skipped as a duplicate maps to
    // the target's event with its event_id.
    std::map<StreamId, std::string> target_moved, source_moved;
    std::map<std::string, std::string> new_id_of_event;
    for (const Entry* e : run->plan) {
      StreamId id;
      if (!ParseStreamId(e->old_id, &id)) continue;
      (e->from_source ? source_moved : target_moved)[id] = e->id;
      if (!e->from_source) new_id_of_event[e->event.event_id()] = e->id;
    }
    std::vector<std::string> args = {run->id()};
    for (const Entry& e : run->source_entries) {
      StreamId id;
      auto kept = new_id_of_event.find(e.event.event_id());
      if (!e.from_source && kept != new_id_of_event.end() && ParseStreamId(e.id, &id)) {
        source_moved[id] = kept->second;
        args.push_back(absl::StrCat(run->source(), "|", e.id));
        args.push_back(kept->second);
      }
    }
    // Entries of earlier merges (ids of either side, or "<customer>|<id>" keys) are carried
    // forward; an old id whose event is gone (given back by an unmerge) maps to the nearest
    // earlier event.
    auto carry = [&args](const Reply& old, const std::map<StreamId, std::string>& moved,
                         const std::string& prefix) {
      for (size_t i = 0; i + 1 < old.elements.size(); i += 2) {
        StreamId was;
        if (!ParseStreamId(old.elements[i + 1].str, &was)) continue;
        auto it = moved.upper_bound(was);
        const std::string& key = old.elements[i].str;
        args.push_back(prefix.empty() || key.find('|') != std::string::npos
                           ? key
                           : absl::StrCat(prefix, "|", key));
        args.push_back(it == moved.begin() ? "0-0" : std::prev(it)->second);
      }
    };
    carry((*olds)[0], target_moved, "");
    carry((*olds)[1], source_moved, run->source());
    auto swap = [this, run](absl::StatusOr<Reply> r) {
      if (!r.ok()) return Fail(run, r.status());
      if (r->integer == -1) return Step(run, kSwap);  // swapped meanwhile
      StageSourceEngagement(run);
    };
    // In chunks, so no call runs long.
    size_t pairs = (args.size() - 1) / 2;
    size_t chunks = (pairs + kWriteChunkEntries - 1) / kWriteChunkEntries;
    auto swapped_meanwhile = std::make_shared<std::atomic<bool>>(false);
    auto written =
        Barrier::Make(chunks, [swap = std::move(swap), swapped_meanwhile](absl::Status st) mutable {
          if (!st.ok()) return swap(st);
          Reply r;
          r.type = Reply::Type::kInteger;
          r.integer = swapped_meanwhile->load() ? -1 : 1;
          swap(r);
        });
    for (size_t c = 0; c < chunks; ++c) {
      lua::MergeStageRemap chunk;
      chunk.staging_remap = tk.merge_staging_remap(run->id());
      chunk.merge_state = tk.merge_state();
      chunk.merge_id = run->id();
      for (size_t i = 1 + 2 * c * kWriteChunkEntries;
           i < std::min(args.size(), 1 + 2 * (c + 1) * kWriteChunkEntries); ++i) {
        chunk.pairs.push_back(args[i]);
      }
      client_->Fcall(chunk, run->deadline, [written, swapped_meanwhile](absl::StatusOr<Reply> r) {
        if (r.ok() && r->integer == -1) *swapped_meanwhile = true;
        written->Arrive(r.status());
      });
    }
  });
  const std::string remaps[2] = {tk.remap(), sk.remap()};
  for (int i = 0; i < 2; ++i) {
    client_->Command({"HGETALL", remaps[i]}, run->deadline, [b, olds, i](absl::StatusOr<Reply> r) {
      if (r.ok()) (*olds)[i] = *std::move(r);
      b->Arrive(r.status());
    });
  }
}

void MergeEngine::StageSourceEngagement(std::shared_ptr<Run> run) {
  // Both customers are held: their outboxes are drained first, so the due-promise index holds
  // what the source's cases promise (the swap moves those promises, and only those).
  outbox::DrainAll(
      client_, run->tenant, {run->source(), run->target()}, run->deadline,
      [this, run](absl::Status st) {
        if (!st.ok()) return Fail(run, st);
        ReadEngagement(client_, run->tenant, run->source(),
                       EngagementParts{.records = true, .contacts = true, .signals = true},
                       run->deadline, [this, run](absl::StatusOr<std::vector<std::string>> pairs) {
                         if (!pairs.ok()) return Fail(run, pairs.status());
                         keys::CustomerKeys tk = run->target_keys();
                         StageEngagement(
                             client_, tk, run->id(), absl::StrCat(run->id(), ":swapped"), "",
                             *std::move(pairs), run->deadline, [this, run, tk](absl::Status st) {
                               if (!st.ok()) return Fail(run, st);
                               // What the swap checks the staging stream against, when it runs as a
                               // step of its own (after a crash, without this run's plan).
                               client_->Command(
                                   {"HSET", tk.merge_state(), absl::StrCat(run->id(), ":staged"),
                                    absl::StrCat(run->plan.size())},
                                   run->deadline, [this, run](absl::StatusOr<Reply> r) {
                                     if (!r.ok()) return Fail(run, r.status());
                                     Step(run, kSwap);
                                   });
                             });
                       });
      });
}

void MergeEngine::Swap(std::shared_ptr<Run> run) {
  keys::CustomerKeys tk = run->target_keys();
  client_->Command(
      {"HMGET", tk.merge_state(), absl::StrCat(run->id(), ":swapped"),
       absl::StrCat(run->id(), ":staged")},
      run->deadline, [this, run](absl::StatusOr<Reply> r) {
        if (!r.ok()) return Fail(run, r.status());
        if (r->elements.size() != 2)
          return Fail(run, absl::InternalError("unexpected HMGET reply"));
        if (r->elements[0].is_string()) {  // swapped by an earlier run: take its counts
          std::pair<std::string, std::string> counts = absl::StrSplit(r->elements[0].str, '|');
          int64_t moved = 0, skipped = 0;
          if (absl::SimpleAtoi(counts.first, &moved) && absl::SimpleAtoi(counts.second, &skipped)) {
            run->record.set_events_moved(moved);
            run->record.set_events_skipped(skipped);
          }
          return SettleTarget(run);
        }
        int64_t staged = 0;
        if (!absl::SimpleAtoi(r->elements[1].str, &staged)) {
          return Fail(run, absl::InternalError(absl::StrCat(
                               "merge ", run->id(),
                               ": the swap found no staged count; its staging is incomplete")));
        }
        SwapStaged(run, staged);
      });
}

void MergeEngine::SwapStaged(std::shared_ptr<Run> run, int64_t staged) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  auto hashes = std::make_shared<std::vector<Reply>>(4);
  auto b = Barrier::Make(4, [this, run, hashes, tk, staged](absl::Status st) {
    if (!st.ok()) return Fail(run, st);
    std::vector<std::string> take(run->record.take_from_source().begin(),
                                  run->record.take_from_source().end());
    ProfileMerge pm = MergeProfiles(HashFromReply((*hashes)[0]), HashFromReply((*hashes)[1]), take);
    lua::MergeSwap swap;
    swap.timeline = tk.timeline();
    swap.staging = tk.merge_staging(run->id());
    swap.dedup = tk.dedup();
    swap.staging_dedup = tk.merge_staging_dedup(run->id());
    swap.merge_state = tk.merge_state();
    swap.profile = tk.profile();
    swap.conversations = tk.conversations();
    swap.remap = tk.remap();
    swap.staging_remap = tk.merge_staging_remap(run->id());
    swap.staging_engagement = tk.merge_staging_engagement(run->id());
    swap.conversation_records = tk.conversation_records();
    swap.cases = tk.cases();
    swap.facts = tk.facts();
    swap.contacts = tk.contacts();
    swap.contact_channels = tk.contact_channels();
    swap.signals = tk.signals();
    swap.outbox = tk.outbox();
    swap.merge_id = run->id();
    swap.staged = staged;
    swap.priors = pm.priors;
    swap.counts = absl::StrCat(run->record.events_moved(), "|", run->record.events_skipped());
    swap.source_id = run->source();
    swap.target_id = run->target();
    swap.tenant = run->tenant;
    AppendCounted(&swap.sets, pm.sets);
    // Conversations open on both sides become one.
    AppendCounted(&swap.sets,
                  MergeConversations(HashFromReply((*hashes)[2]), HashFromReply((*hashes)[3])));
    client_->Fcall(swap, run->deadline, [this, run](absl::StatusOr<Reply> r) {
      if (!r.ok()) return Fail(run, r.status());
      run->plan.clear();
      run->target_entries.clear();
      run->source_entries.clear();
      SettleTarget(run);
    });
  });
  const std::string keys_to_read[4] = {tk.profile(), sk.profile(), tk.conversations(),
                                       sk.conversations()};
  for (int i = 0; i < 4; ++i) {
    client_->Command({"HGETALL", keys_to_read[i]}, run->deadline,
                     [b, hashes, i](absl::StatusOr<Reply> r) {
                       if (r.ok()) (*hashes)[i] = *std::move(r);
                       b->Arrive(r.status());
                     });
  }
}

void MergeEngine::SettleTarget(std::shared_ptr<Run> run) {
  // The moved cases' journey entries and due promises are in the target's outbox: marked
  // before the merge goes on (a crash leaves a mark the Sweeper finds; a rerun of this step
  // marks again), drained after.
  outbox::Settle(client_, run->tenant, run->target(), run->deadline, [this, run](absl::Status st) {
    if (!st.ok()) return Fail(run, st);
    Step(run, kIdentifiers);
  });
}

void MergeEngine::MoveIdentifiers(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command(
      {"HGETALL", sk.identifiers()}, run->deadline, [this, run, tk](absl::StatusOr<Reply> ids) {
        if (!ids.ok()) return Fail(run, ids.status());
        struct Moved {
          std::string field;
          std::string value;
          bool moved = false;
        };
        auto moved = std::make_shared<std::vector<Moved>>();
        for (size_t i = 0; i + 1 < ids->elements.size(); i += 2) {
          v1::LinkEvidence e;
          if (!identity::DecodeEvidence(ids->elements[i + 1].str, &e)) continue;
          e.set_merge_id(WithTag(e.merge_id(), run->id()));  // the chain, this merge last
          e.set_merged_from(run->source());
          moved->push_back({ids->elements[i].str, identity::EncodeEvidence(e), false});
        }
        auto b = Barrier::Make(moved->size(), [this, run, tk, moved](absl::Status st) {
          if (!st.ok()) return Fail(run, st);
          lua::MergeAddIdentifiers add;
          add.identifiers = tk.identifiers();
          for (const auto& m : *moved) {
            if (!m.moved) continue;
            add.pairs.push_back(m.field);
            add.pairs.push_back(m.value);
          }
          auto next = [this, run](absl::StatusOr<Reply> r) {
            if (!r.ok()) return Fail(run, r.status());
            Step(run, kMark);
          };
          if (add.pairs.empty()) return next(Reply{});
          client_->Fcall(add, run->deadline, std::move(next));
        });
        for (size_t i = 0; i < moved->size(); ++i) {
          // The index first: a crash before the target's list is updated is finished by a rerun,
          // which finds the entry already moved.
          client_->Fcall(
              MoveIndexCall(run->tenant, (*moved)[i].field, run->target(), run->source()),
              run->deadline, [b, moved, i](absl::StatusOr<Reply> r) {
                if (r.ok()) (*moved)[i].moved = r->integer == 1;
                b->Arrive(r.status());
              });
        }
      });
}

void MergeEngine::Mark(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Command({"HGET", tk.merge_state(), absl::StrCat(run->id(), ":head")}, run->deadline,
                   [this, run, sk](absl::StatusOr<Reply> head) {
                     if (!head.ok()) return Fail(run, head.status());
                     std::string h = head->is_string() ? head->str : "0-0";
                     lua::MergeMark mark;
                     mark.profile = sk.profile();
                     mark.target_id = run->target();
                     mark.merge_id = run->id();
                     mark.head = h;
                     mark.notify_channel = sk.channel();
                     client_->Fcall(mark, run->deadline, [this, run](absl::StatusOr<Reply> r) {
                       if (!r.ok()) return Fail(run, r.status());
                       Step(run, kFinish);
                     });
                   });
}

void MergeEngine::Finish(std::shared_ptr<Run> run) {
  keys::CustomerKeys sk = run->source_keys(), tk = run->target_keys();
  client_->Fcall(ReleaseNotifyCall(tk, run->id(), "merged"), run->deadline,
                 [this, run, sk, tk](absl::StatusOr<Reply> r) {
                   if (!r.ok()) return Fail(run, r.status());
                   std::string score = absl::StrCat(ToMillis(run->record.started_at()));
                   auto b = Barrier::Make(2, [this, run](absl::Status st) {
                     if (!st.ok()) return Fail(run, st);
                     run->record.set_state(v1::MergeRecord::STATE_MERGED);
                     *run->record.mutable_merged_at() = FromMillis(NowMillis());
                     Log(LogLevel::kInfo, "merge.done",
                         {{"tenant", run->tenant},
                          {"merge_id", run->id()},
                          {"source", run->source()},
                          {"target", run->target()},
                          {"events_moved", absl::StrCat(run->record.events_moved())},
                          {"events_skipped", absl::StrCat(run->record.events_skipped())},
                          {"identifiers", absl::StrCat(run->record.source_identifiers_size())}});
                     Step(run, kDone);
                   });
                   for (const auto& k : {sk, tk}) {
                     client_->Command({"ZADD", k.merge_history(), score, run->id()}, run->deadline,
                                      [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
                   }
                 });
}

}  // namespace onestory::merge
