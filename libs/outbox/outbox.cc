#include "libs/outbox/outbox.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/common/barrier.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/outbox_activity.h"
#include "libs/lua/outbox_alerts.h"
#include "libs/lua/outbox_delete.h"
#include "libs/lua/outbox_due.h"
#include "libs/lua/outbox_journey.h"
#include "libs/lua/outbox_unmark.h"

namespace onestory::outbox {
namespace {

steps::Failpoint& DrainFailpoint() {
  static auto* failpoint = new steps::Failpoint();
  return *failpoint;
}

using redis::Reply;

std::string Member(const std::string& tenant, const std::string& customer_id) {
  return absl::StrCat(tenant, "|", customer_id);
}

// One batch of entries, by target (the entry format: libs/outbox/lua/write.lua).
struct Batch {
  std::vector<std::string> ids;     // every entry, in order
  std::vector<std::string> alerts;  // outbox_alerts' alerts...
  // outbox_journey's entries per journey bucket (keys::TenantBucket of the customer each entry
  // concerns), and outbox_due's per due bucket (keys::DueBucket), in order
  std::map<int, std::vector<std::string>> journey;
  std::map<int, std::vector<std::string>> due;
  int64_t active_at = -1;  // the latest activity, -1 when none
};

// The journey bucket of an entry of `owner`'s outbox about open-case member m ("<stage>|
// <entered>|<customer>|<case>"): the bucket of the customer it names, which a merge's entries
// may make another than the owner; the owner's when m does not parse.
int JourneyBucket(absl::string_view owner, absl::string_view member) {
  std::vector<absl::string_view> parts = absl::StrSplit(member, absl::MaxSplits('|', 3));
  return keys::TenantBucket(parts.size() == 4 && !parts[2].empty() ? parts[2] : owner);
}

// The due bucket of a due-promise member ("<tenant>|<customer>|<case>"), likewise.
int DueBucketOf(absl::string_view tenant, absl::string_view owner, absl::string_view member) {
  std::vector<absl::string_view> parts = absl::StrSplit(member, absl::MaxSplits('|', 2));
  if (parts.size() == 3 && !parts[1].empty()) return keys::DueBucket(parts[0], parts[1]);
  return keys::DueBucket(tenant, owner);
}

absl::StatusOr<Batch> ParseBatch(const Reply& r, absl::string_view tenant,
                                 absl::string_view owner) {
  if (!r.is_array()) return absl::InternalError("unexpected reply to XRANGE of an outbox");
  Batch b;
  for (const Reply& e : r.elements) {
    if (!e.is_array() || e.elements.size() != 2 || !e.elements[1].is_array()) {
      return absl::InternalError("malformed outbox entry");
    }
    const std::string& id = e.elements[0].str;
    auto field = [&e](absl::string_view name) -> std::string {
      const auto& f = e.elements[1].elements;
      for (size_t i = 0; i + 1 < f.size(); i += 2) {
        if (f[i].str == name) return f[i + 1].str;
      }
      return "";
    };
    const std::string kind = field("t");
    if (kind == "a") {
      for (absl::string_view name : {"id", "k", "ca", "msg", "at"}) {
        b.alerts.push_back(field(name));
      }
    } else if (kind == "n") {
      auto& j = b.journey[keys::TenantBucket(owner)];
      j.insert(j.end(), {field("s"), kind, field("f"), "", ""});
    } else if (kind == "jo" || kind == "jr") {
      const std::string m = field("m");
      auto& j = b.journey[JourneyBucket(owner, m)];
      j.insert(j.end(), {field("s"), kind, m, "", ""});
    } else if (kind == "jl") {
      const std::string m = field("m");
      auto& j = b.journey[JourneyBucket(owner, m)];
      j.insert(j.end(), {field("s"), kind, m, field("g"), field("ms")});
    } else if (kind == "da" || kind == "dr") {
      const std::string m = field("m");
      auto& d = b.due[DueBucketOf(tenant, owner, m)];
      d.insert(d.end(), {field("s"), kind, m, field("sc")});
    } else if (kind == "x") {
      int64_t at = 0;
      if (absl::SimpleAtoi(field("at"), &at)) b.active_at = std::max(b.active_at, at);
    } else {
      // Entries after it wait too: they are applied in order.
      if (!b.ids.empty()) break;
      return absl::FailedPreconditionError(
          absl::StrCat("outbox entry ", id, " has kind '", kind,
                       "', unknown to this version: left for a newer one"));
    }
    b.ids.push_back(id);
  }
  return b;
}

struct DrainRun {
  redis::Client* client;
  std::string tenant;
  std::string customer_id;
  int64_t mark;
  absl::Time deadline;
  int64_t applied = 0;
  Callback<int64_t> done;
};

void Step(std::shared_ptr<DrainRun> run);

// After the last batch: clears the mark (when it is still run->mark), then done.
void Finish(std::shared_ptr<DrainRun> run) {
  if (run->mark == 0) return run->done(run->applied);
  lua::OutboxUnmark call;
  call.pending = keys::PendingOutboxKey(run->tenant, run->customer_id);
  call.member = Member(run->tenant, run->customer_id);
  call.mark = run->mark;
  run->client->Fcall(call, run->deadline, [run](absl::StatusOr<Reply> r) {
    if (!r.ok()) return run->done(r.status());
    run->done(run->applied);
  });
}

// Deletes the entries of a batch once applied, then reads the next one or finishes.
void Delete(std::shared_ptr<DrainRun> run, std::vector<std::string> ids, bool last) {
  if (ids.empty()) return Finish(std::move(run));
  lua::OutboxDelete call;
  call.outbox = keys::CustomerKeys(run->tenant, run->customer_id).outbox();
  const int64_t n = static_cast<int64_t>(ids.size());
  call.ids = std::move(ids);
  run->client->Fcall(call, run->deadline, [run, n, last](absl::StatusOr<Reply> r) {
    if (!r.ok()) return run->done(r.status());
    run->applied += n;
    if (last) return Finish(run);
    Step(run);
  });
}

// The customer's latest activity into its bucket's activity index (outbox_activity); the first
// time the bucket's index is created, the tenant goes into the tenant registry first.
void ApplyActivity(redis::Client* client, const std::string& tenant, const std::string& customer_id,
                   int64_t at, absl::Time deadline, bool registered,
                   absl::AnyInvocable<void(absl::Status)> done) {
  lua::OutboxActivity call;
  call.activity = keys::TenantKeys(tenant, keys::TenantBucket(customer_id)).activity();
  call.customer_id = customer_id;
  call.at = at;
  call.registered = registered ? 1 : 0;
  client->Fcall(call, deadline,
                [client, tenant, customer_id, at, deadline, registered,
                 done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                  if (!r.ok()) return done(r.status());
                  if (r->integer == 1 || registered) return done(absl::OkStatus());
                  client->Command({"SADD", keys::TenantRegistryKey(), tenant}, deadline,
                                  [client, tenant, customer_id, at, deadline,
                                   done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                                    if (!r.ok()) return done(r.status());
                                    ApplyActivity(client, tenant, customer_id, at, deadline,
                                                  /*registered=*/true, std::move(done));
                                  });
                });
}

// Applies one batch to its targets (in parallel: they are independent), then deletes it.
void Apply(std::shared_ptr<DrainRun> run, Batch batch, bool last) {
  redis::Client* client = run->client;
  const int targets = (batch.alerts.empty() ? 0 : 1) + static_cast<int>(batch.journey.size()) +
                      static_cast<int>(batch.due.size()) + (batch.active_at < 0 ? 0 : 1);
  auto applied =
      Barrier::Make(targets, [run, ids = std::move(batch.ids), last](absl::Status st) mutable {
        if (!st.ok()) return run->done(st);
        Delete(run, std::move(ids), last);
      });
  auto arrive = [applied](absl::StatusOr<Reply> r) { applied->Arrive(r.status()); };
  if (!batch.alerts.empty()) {
    // The customer's bucket of the tenant's alerts (AlertStore merges the buckets).
    const keys::TenantKeys ak(run->tenant, keys::TenantBucket(run->customer_id));
    lua::OutboxAlerts call;
    call.alert_log = ak.alert_log();
    call.alert_ids = ak.alert_ids();
    call.alert_open = ak.alert_open();
    call.customer_id = run->customer_id;
    call.alert_channel = ak.alert_channel();
    call.alerts = std::move(batch.alerts);
    client->Fcall(call, run->deadline, arrive);
  }
  // Each bucket applies its own subset of the batch, once: its high-water mark of this outbox
  // is its own.
  for (auto& [bucket, entries] : batch.journey) {
    const keys::TenantKeys jk(run->tenant, bucket);
    lua::OutboxJourney call;
    call.journey_counters = jk.journey_counters();
    call.journey_open = jk.journey_open();
    call.journey_stays = jk.journey_stays();
    call.applied = jk.journey_applied();
    call.applied_at = jk.journey_applied_at();
    call.customer_id = run->customer_id;
    call.now_ms = NowMillis();
    call.kept_ms = absl::ToInt64Milliseconds(kAppliedKeptFor);
    call.entries = std::move(entries);
    client->Fcall(call, run->deadline, arrive);
  }
  for (auto& [bucket, entries] : batch.due) {
    lua::OutboxDue call;
    call.due_promises = keys::DuePromisesKey(bucket);
    call.applied = keys::DuePromisesAppliedKey(bucket);
    call.applied_at = keys::DuePromisesAppliedAtKey(bucket);
    call.owner = Member(run->tenant, run->customer_id);
    call.now_ms = NowMillis();
    call.kept_ms = absl::ToInt64Milliseconds(kAppliedKeptFor);
    call.entries = std::move(entries);
    client->Fcall(call, run->deadline, arrive);
  }
  if (batch.active_at >= 0) {
    ApplyActivity(client, run->tenant, run->customer_id, batch.active_at, run->deadline,
                  /*registered=*/false, [applied](absl::Status st) { applied->Arrive(st); });
  }
}

void Step(std::shared_ptr<DrainRun> run) {
  run->client->Command({"XRANGE", keys::CustomerKeys(run->tenant, run->customer_id).outbox(), "-",
                        "+", "COUNT", absl::StrCat(kBatch)},
                       run->deadline, [run](absl::StatusOr<Reply> r) {
                         if (!r.ok()) return run->done(r.status());
                         const bool last = r->elements.size() < static_cast<size_t>(kBatch);
                         absl::StatusOr<Batch> batch =
                             ParseBatch(*r, run->tenant, run->customer_id);
                         if (!batch.ok()) return run->done(batch.status());
                         // A batch cut short by an unknown entry applies what precedes it, then
                         // stops there.
                         const bool cut = batch->ids.size() < r->elements.size();
                         if (cut) {
                           Log(LogLevel::kWarning, "outbox.unknown_entry",
                               {{"tenant", run->tenant},
                                {"customer", run->customer_id},
                                {"entry", r->elements[batch->ids.size()].elements[0].str}});
                           run->mark =
                               0;  // the mark stays: the newer version's drain or sweep finishes it
                         }
                         Apply(run, *std::move(batch), last || cut);
                       });
}

}  // namespace

void SetFailpoint(steps::Failpoint failpoint) { DrainFailpoint() = std::move(failpoint); }

void Drain(redis::Client* client, const std::string& tenant, const std::string& customer_id,
           int64_t mark, absl::Time deadline, Callback<int64_t> done) {
  auto run = std::make_shared<DrainRun>();
  run->client = client;
  run->tenant = tenant;
  run->customer_id = customer_id;
  run->mark = mark;
  run->deadline = deadline;
  run->done = std::move(done);
  Step(std::move(run));
}

void DrainAll(redis::Client* client, const std::string& tenant,
              const std::vector<std::string>& customer_ids, absl::Time deadline,
              absl::AnyInvocable<void(absl::Status)> done) {
  auto all = Barrier::Make(customer_ids.size(), std::move(done));
  for (const std::string& id : customer_ids) {
    Drain(client, tenant, id, /*mark=*/0, deadline,
          [all](absl::StatusOr<int64_t> n) { all->Arrive(n.status()); });
  }
}

void Settle(redis::Client* client, const std::string& tenant, const std::string& customer_id,
            absl::Time deadline, absl::AnyInvocable<void(absl::Status)> marked) {
  client->Command(
      {"ZINCRBY", keys::PendingOutboxKey(tenant, customer_id), "1", Member(tenant, customer_id)},
      deadline,
      [client, tenant, customer_id, marked = std::move(marked)](absl::StatusOr<Reply> r) mutable {
        int64_t mark = 0;
        if (r.ok() && !absl::SimpleAtoi(r->str, &mark)) {
          r = absl::InternalError(absl::StrCat("unexpected reply to ZINCRBY: ", r->str));
        }
        if (!r.ok()) {
          return marked(absl::UnavailableError(absl::StrCat(
              "the write is stored, but its effects on alerts and counters could not be "
              "scheduled (retry: nothing is stored twice): ",
              r.status().message())));
        }
        marked(absl::OkStatus());
        if (const steps::Failpoint& fp = DrainFailpoint(); fp && fp("outbox.drain")) return;
        Drain(client, tenant, customer_id, mark, absl::Now() + kDrainTimeout,
              [tenant, customer_id](absl::StatusOr<int64_t> n) {
                if (n.ok()) return;
                Log(LogLevel::kWarning, "outbox.drain_failed",
                    {{"tenant", tenant},
                     {"customer", customer_id},
                     {"error", n.status().ToString()}});
              });
      });
}

}  // namespace onestory::outbox
