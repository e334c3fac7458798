// PrivacyStore::Redact: the redaction of one event as bounded, idempotent steps behind a
// durable record (see "Redact" in privacy_store.h).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/identity/merged.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/privacy_drop_pending_redaction.h"
#include "libs/lua/privacy_redact_begin.h"
#include "libs/lua/privacy_redact_chunk.h"
#include "libs/lua/privacy_redact_end.h"
#include "libs/lua/privacy_redact_read.h"
#include "libs/lua/privacy_redact_records.h"
#include "libs/lua/privacy_redact_swap.h"
#include "libs/privacy/free_text.h"
#include "libs/privacy/privacy_internal.h"
#include "libs/privacy/privacy_store.h"
#include "libs/timeline/event_effects.h"
#include "libs/timeline/event_validation.h"
#include "libs/timeline/stream_entry.h"

namespace onestory::privacy {
namespace {

using internal::FindMergedSources;
using internal::MergedSource;
using redis::Reply;

// The record's fields (libs/privacy/lua/redact_begin.lua), in the order ResumeRedaction reads
// them.
constexpr const char* kRecordFields[] = {"tok", "eid", "sum", "body", "new",
                                         "old", "sid", "am",  "srcs"};
constexpr size_t kRecordFieldCount = sizeof(kRecordFields) / sizeof(kRecordFields[0]);

std::string PendingField(const std::string& tenant, const std::string& customer) {
  return absl::StrCat(tenant, "/", customer);
}

}  // namespace

// ---- the run -----------------------------------------------------------------------------------

struct PrivacyStore::RedactRun {
  std::string tenant;
  std::string resolved;  // the customer the request named (merges not yet followed)
  std::string root;      // the customer whose timeline holds the event
  std::string token;     // 20 digits from a counter: later redactions sort after
  std::string event_id;
  std::string summary;  // the new text, masked
  std::string body;
  std::string blob;                  // the event to store
  std::string old_blob;              // the event as it was
  std::string sid;                   // its stream id in root's timeline
  std::string appended;              // its 'a' field (ms first stored) for events a merge moved
  std::vector<std::string> targets;  // the customers merged into root, then root
  size_t target = 0;                 // the stream being rebuilt
  absl::Time deadline;
  int64_t steps = 0;
  Callback<v1::RedactEventResponse> done;

  std::string field() const { return PendingField(tenant, root); }
  // The answer: the event as now stored.
  absl::StatusOr<v1::RedactEventResponse> Answer() const {
    timeline::StreamEntry stored;
    stored.id = sid;
    stored.blob = blob;
    stored.appended = appended;
    absl::StatusOr<v1::Event> event = stored.Event(root);
    if (!event.ok()) return event.status();
    v1::RedactEventResponse resp;
    *resp.mutable_event() = *std::move(event);
    return resp;
  }
};

void PrivacyStore::Redact(const v1::RedactEventRequest& request, absl::Time deadline,
                          Callback<v1::RedactEventResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (absl::Status st =
          ValidateToken("event_id", request.event_id(), timeline::kMaxEventIdBytes, false);
      !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateText("summary", request.summary(), timeline::kMaxSummaryBytes);
      !st.ok()) {
    return done(st);
  }
  if (absl::Status st = ValidateText("body", request.body(), timeline::kMaxBodyBytes); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = internal::ValidateReason(request.reason()); !st.ok()) return done(st);
  auto run = std::make_shared<RedactRun>();
  run->tenant = request.tenant();
  run->event_id = request.event_id();
  // The new text is masked like any stored text (cards, --redact_patterns_file).
  const Redactor& redactor = OrCardsOnly(redactor_);
  run->summary = redactor.Mask(request.summary());
  run->body = redactor.Mask(request.body());
  run->deadline = deadline;
  run->done = std::move(done);
  identity_->ResolveRef(run->tenant, "customer", request.customer(), false, deadline,
                        [this, run](absl::StatusOr<identity::IdentityStore::Resolved> who) {
                          if (!who.ok()) return run->done(who.status());
                          run->resolved = who->customer_id;
                          RedactAttempt(run, 0);
                        });
}

namespace {

struct Found {
  std::string customer_id;
  std::string sid;
  std::string blob;
  std::string appended;
  int64_t length = 0;
};

}  // namespace

// Finds the event (merges followed), then finishes the redaction under way on that timeline:
// this one (a retry), or another one first (at most a few times, then ABORTED), or begins it.
void PrivacyStore::RedactAttempt(std::shared_ptr<RedactRun> run, int helped) {
  identity::FollowMerges<Found>(
      run->resolved,
      [this, run](const std::string& c, Callback<Found> cb) {
        keys::CustomerKeys ck(run->tenant, c);
        lua::PrivacyRedactRead read;
        read.profile = ck.profile();
        read.dedup = ck.dedup();
        read.timeline = ck.timeline();
        read.customer_id = c;
        read.event_id = run->event_id;
        client_->Fcall(
            read, run->deadline, [c, cb = std::move(cb)](absl::StatusOr<Reply> r) mutable {
              if (!r.ok()) return cb(r.status());
              if (!r->is_array() || r->elements.size() != 3) {
                return cb(absl::InternalError("unexpected reply from privacy_redact_read"));
              }
              absl::StatusOr<timeline::StreamEntry> stored =
                  timeline::ParseStreamEntry(r->elements[0], r->elements[1]);
              if (!stored.ok()) return cb(stored.status());
              Found f;
              f.customer_id = c;
              f.sid = std::move(stored->id);
              f.blob = std::move(stored->blob);
              f.appended = std::move(stored->appended);
              f.length = r->elements[2].integer;
              cb(std::move(f));
            });
      },
      [this, run, helped](absl::StatusOr<Found> found) {
        if (!found.ok()) return run->done(found.status());
        run->root = found->customer_id;
        auto f = std::make_shared<Found>(*std::move(found));
        keys::CustomerKeys ck(run->tenant, run->root);
        client_->Command(
            {"HMGET", ck.redaction(), "tok", "eid", "sum", "body"}, run->deadline,
            [this, run, helped, f](absl::StatusOr<Reply> r) {
              if (!r.ok()) return run->done(r.status());
              if (!r->is_array() || r->elements.size() != 4) {
                return run->done(absl::InternalError("unexpected HMGET reply"));
              }
              const auto& g = r->elements;
              if (!g[0].is_string()) {
                return BeginRedaction(run, helped, f->sid, f->blob, f->appended, f->length);
              }
              bool same =
                  g[1].str == run->event_id && g[2].str == run->summary && g[3].str == run->body;
              if (!same && helped >= 3) {
                return run->done(
                    absl::AbortedError(absl::StrCat("another redaction of customer ", run->root,
                                                    "'s timeline is under way; retry")));
              }
              // This redaction (a retry), or another one, finished first: then this one
              // starts again (and finds its event already redacted when it was the same).
              ResumeRedaction(run->tenant, run->root, run->deadline,
                              [this, run, helped, same](absl::StatusOr<v1::RedactEventResponse> r) {
                                if (same && r.ok()) return run->done(std::move(r));
                                if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
                                  return run->done(r.status());
                                }
                                RedactAttempt(run, helped + 1);
                              });
            });
      });
}

void PrivacyStore::BeginRedaction(std::shared_ptr<RedactRun> run, int helped,
                                  const std::string& sid, const std::string& blob,
                                  const std::string& appended, int64_t length) {
  v1::Event event;
  if (!event.ParseFromString(blob)) {
    return run->done(absl::InternalError(absl::StrCat("undecodable event at ", sid)));
  }
  run->sid = sid;
  run->appended = appended;
  run->old_blob = blob;
  if (event.has_redacted_at() && event.summary() == run->summary && event.body() == run->body) {
    // Done before (a retry after the answer was lost): the same answer.
    run->blob = blob;
    return run->done(run->Answer());
  }
  if (length > kMaxRedactEvents) {
    return run->done(absl::ResourceExhaustedError(
        absl::StrCat("customer ", run->root, " has more than ", kMaxRedactEvents,
                     " events; its timeline is too long to rebuild")));
  }
  event.set_summary(run->summary);
  event.set_body(run->body);
  *event.mutable_redacted_at() = FromMillis(NowMillis());
  run->blob = event.SerializeAsString();
  FindMergedSources(client_, run->tenant, run->root, run->deadline,
                    [this, run, helped](absl::StatusOr<std::vector<MergedSource>> sources) {
                      if (!sources.ok()) return run->done(sources.status());
                      // The copies kept by customers merged into it first, the timeline itself
                      // last.
                      for (const MergedSource& s : *sources) run->targets.push_back(s.customer_id);
                      run->targets.push_back(run->root);
                      client_->Command({"INCR", keys::RedactionSequenceKey()}, run->deadline,
                                       [this, run, helped](absl::StatusOr<Reply> seq) {
                                         if (!seq.ok()) return run->done(seq.status());
                                         run->token = absl::StrFormat("%020d", seq->integer);
                                         WriteRedaction(run, helped);
                                       });
                    });
}

// Listed as pending before the record exists: recovery drops an entry without one.
void PrivacyStore::WriteRedaction(std::shared_ptr<RedactRun> run, int helped) {
  client_->Command({"HSET", keys::PendingRedactionsKey(), run->field(), absl::StrCat(NowMillis())},
                   run->deadline, [this, run, helped](absl::StatusOr<Reply> r) {
                     if (!r.ok()) return run->done(r.status());
                     if (RedactFailpoint(run, "redact.begin")) return;
                     std::vector<std::string> sources(run->targets.begin(), run->targets.end() - 1);
                     keys::CustomerKeys ck(run->tenant, run->root);
                     lua::PrivacyRedactBegin begin;
                     begin.redaction = ck.redaction();
                     begin.token = run->token;
                     begin.event_id = run->event_id;
                     begin.summary = run->summary;
                     begin.body = run->body;
                     begin.blob = run->blob;
                     begin.old_blob = run->old_blob;
                     begin.stream_id = run->sid;
                     begin.appended = run->appended;
                     begin.sources = absl::StrJoin(sources, ",");
                     client_->Fcall(begin, run->deadline,
                                    [this, run, helped](absl::StatusOr<Reply> r) {
                                      if (!r.ok()) return run->done(r.status());
                                      // Another redaction began meanwhile: it goes first.
                                      if (r->integer != 1) return RedactAttempt(run, helped + 1);
                                      Log(LogLevel::kInfo, "redact.started",
                                          {{"tenant", run->tenant},
                                           {"customer", run->root},
                                           {"stream_id", run->sid},
                                           {"streams", absl::StrCat(run->targets.size())}});
                                      DriveRedaction(run);
                                    });
                   });
}

void PrivacyStore::ResumeRedaction(const std::string& tenant, const std::string& customer,
                                   absl::Time deadline, Callback<v1::RedactEventResponse> then) {
  keys::CustomerKeys ck(tenant, customer);
  std::vector<std::string> cmd = {"HMGET", ck.redaction()};
  cmd.insert(cmd.end(), std::begin(kRecordFields), std::end(kRecordFields));
  client_->Command(
      std::move(cmd), deadline,
      [this, tenant, customer, deadline, then = std::move(then)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return then(r.status());
        if (!r->is_array() || r->elements.size() != kRecordFieldCount) {
          return then(absl::InternalError("unexpected HMGET reply"));
        }
        const auto& g = r->elements;
        if (!g[0].is_string()) {
          return then(absl::NotFoundError(
              absl::StrCat("customer ", customer, " has no redaction under way")));
        }
        auto run = std::make_shared<RedactRun>();
        run->tenant = tenant;
        run->resolved = customer;
        run->root = customer;
        run->token = g[0].str;
        run->event_id = g[1].str;
        run->summary = g[2].str;
        run->body = g[3].str;
        run->blob = g[4].str;
        run->old_blob = g[5].str;
        run->sid = g[6].str;
        run->appended = g[7].str;
        run->targets = absl::StrSplit(g[8].str, ',', absl::SkipEmpty());
        run->targets.push_back(customer);
        run->deadline = deadline;
        run->done = std::move(then);
        DriveRedaction(run);
      });
}

bool PrivacyStore::RedactFailpoint(std::shared_ptr<RedactRun> run, const char* step) {
  absl::Status st = steps::CheckFailpoint(failpoint_, step);
  if (st.ok()) return false;
  run->done(std::move(st));
  return true;
}

void PrivacyStore::DriveRedaction(std::shared_ptr<RedactRun> run) {
  if (run->target >= run->targets.size()) return RedactRecords(run);
  CopyStep(run, false);
}

// One copy or swap step of the stream being rebuilt, then the next.
void PrivacyStore::CopyStep(std::shared_ptr<RedactRun> run, bool swap) {
  if (RedactFailpoint(run, swap ? "redact.swap" : "redact.copy")) return;
  // A long redaction keeps its pending entry young, so that recovery leaves it alone.
  if (++run->steps % 64 == 0) {
    client_->Command(
        {"HSET", keys::PendingRedactionsKey(), run->field(), absl::StrCat(NowMillis())},
        run->deadline, [](absl::StatusOr<Reply>) {});
  }
  const std::string& c = run->targets[run->target];
  bool root = c == run->root;
  keys::CustomerKeys ck(run->tenant, c);
  // privacy_redact_chunk and privacy_redact_swap take the same keys and arguments.
  auto fill = [&](auto& call) {
    call.profile = ck.profile();
    call.timeline = ck.timeline();
    call.staging = ck.timeline_rebuild();
    call.dedup = ck.dedup();
    call.redaction = ck.redaction();
    call.merge_state = ck.merge_state();
    call.customer_id = c;
    call.token = run->token;
    call.event_id = run->event_id;
    call.blob = run->blob;
    call.max_entries = kRedactChunkEntries;
    call.max_bytes = kRedactChunkBytes;
    call.largest_entry = kRedactLargestEntryBytes;
    call.root = root ? 1 : 0;
  };
  auto next = [this, run, root](absl::StatusOr<Reply> r) {
    if (!r.ok()) {
      absl::Status st = r.status();
      std::optional<identity::Moved> moved = identity::MovedTo(st);
      if (!root || (!moved && st.code() != absl::StatusCode::kNotFound)) {
        return run->done(st);
      }
      // The customer was merged into another or erased meanwhile: this redaction is over
      // (an erase removes everything; after a merge a retry redacts the event where it is
      // now, and the copy here).
      if (moved) {
        st = absl::AbortedError(absl::StrCat("customer ", run->root, " was merged into ",
                                             moved->target, " meanwhile; retry"));
      }
      keys::CustomerKeys ck(run->tenant, run->root);
      lua::PrivacyRedactEnd drop;
      drop.redaction = ck.redaction();
      drop.staging = ck.timeline_rebuild();
      drop.token = run->token;
      drop.drop_copy = 1;
      return client_->Fcall(drop, run->deadline, [this, run, st](absl::StatusOr<Reply> e) {
        if (!e.ok()) return run->done(e.status());
        client_->Command({"HDEL", keys::PendingRedactionsKey(), run->field()}, run->deadline,
                         [run, st](absl::StatusOr<Reply>) { run->done(st); });
      });
    }
    if (!r->is_array() || r->elements.size() != 3) {
      return run->done(absl::InternalError("unexpected reply from the redaction copy step"));
    }
    const std::string& state = r->elements[0].str;
    // Stale on the timeline itself: the record is gone, another run of this redaction
    // finished it. On a merged customer's copy: a later redaction rebuilt it (one of this
    // timeline's, so after this one finished; or the customer's own after an unmerge).
    if (state == "stale" && root) return run->done(run->Answer());
    if (state == "swapped" || state == "stale") {
      ++run->target;
      return DriveRedaction(run);
    }
    CopyStep(run, state == "caught");
  };
  if (swap) {
    lua::PrivacyRedactSwap call;
    fill(call);
    return client_->Fcall(call, run->deadline, std::move(next));
  }
  lua::PrivacyRedactChunk call;
  fill(call);
  client_->Fcall(call, run->deadline, std::move(next));
}

void PrivacyStore::RedactRecords(std::shared_ptr<RedactRun> run) {
  if (RedactFailpoint(run, "redact.records")) return;
  v1::Event old;
  if (!old.ParseFromString(run->old_blob)) {
    return run->done(absl::InternalError(absl::StrCat("undecodable event at ", run->sid)));
  }
  const char* what = "";
  switch (old.kind()) {
    case v1::EVENT_KIND_CASE_UPDATE:
      what = "note";
      break;
    case v1::EVENT_KIND_CASE_RESOLVED:
      what = "resolution";
      break;
    case v1::EVENT_KIND_CONVERSATION_ENDED:
      what = "outcome";
      break;
    default:
      break;
  }
  auto b = Barrier::Make(run->targets.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    FinishRedaction(run);
  });
  for (const std::string& c : run->targets) {
    keys::CustomerKeys ck(run->tenant, c);
    lua::PrivacyRedactRecords call;
    call.cases = ck.cases();
    call.facts = ck.facts();
    call.conversation_records = ck.conversation_records();
    call.event_id = run->event_id;
    call.what = what;
    call.case_id = old.case_id();
    call.conversation_id = old.conversation_id();
    call.old_summary = old.summary();
    call.old_body = old.body();
    call.new_summary = run->summary;
    call.new_body = run->body;
    client_->Fcall(call, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::FinishRedaction(std::shared_ptr<RedactRun> run) {
  if (RedactFailpoint(run, "redact.done")) return;
  keys::CustomerKeys ck(run->tenant, run->root);
  lua::PrivacyRedactEnd drop;
  drop.redaction = ck.redaction();
  drop.staging = ck.timeline_rebuild();
  drop.token = run->token;
  drop.drop_copy = 0;
  client_->Fcall(drop, run->deadline, [this, run](absl::StatusOr<Reply> r) {
    if (!r.ok()) return run->done(r.status());
    client_->Command({"HDEL", keys::PendingRedactionsKey(), run->field()}, run->deadline,
                     [run](absl::StatusOr<Reply> r) {
                       if (!r.ok()) return run->done(r.status());
                       Log(LogLevel::kInfo, "redact.done",
                           {{"customer", run->root},
                            {"stream_id", run->sid},
                            {"steps", absl::StrCat(run->steps)}});
                       run->done(run->Answer());
                     });
  });
}

void PrivacyStore::RecoverRedactions(absl::Time deadline, absl::Duration older_than,
                                     Callback<int> done) {
  steps::RecoverPendingHash(
      client_, keys::PendingRedactionsKey(), "redact", older_than,
      [](absl::string_view value) {
        int64_t at = 0;
        absl::SimpleAtoi(value, &at);
        return at;
      },
      deadline,
      [this, deadline](const steps::PendingRun& d, steps::Report report) {
        ResumeRedaction(
            d.tenant, d.customer, deadline,
            [this, d, deadline,
             report = std::move(report)](absl::StatusOr<v1::RedactEventResponse> r) mutable {
              if (r.ok()) return report(true);
              if (r.status().code() == absl::StatusCode::kNotFound) {
                // No record: it finished, or its run stopped before writing one.
                lua::PrivacyDropPendingRedaction drop;
                drop.pending = keys::PendingRedactionsKey();
                drop.field = PendingField(d.tenant, d.customer);
                drop.value = d.value;
                return client_->Fcall(
                    drop, deadline,
                    [report = std::move(report)](absl::StatusOr<Reply>) mutable { report(false); });
              }
              Log(LogLevel::kWarning, "redact.recovery_failed",
                  {{"tenant", d.tenant},
                   {"customer", d.customer},
                   {"error", r.status().ToString()}});
              report(false);
            });
      },
      std::move(done));
}

}  // namespace onestory::privacy
