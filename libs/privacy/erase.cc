// PrivacyStore::Erase: a customer and the customers merged into it erased as idempotent steps
// behind a durable record (see "Erase" in privacy_store.h), and RecoverPending, which finishes
// the erases (and redactions) a crash interrupted.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/log.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/identity/match_keys.h"
#include "libs/identity/merge_suggester.h"
#include "libs/identity/merged.h"
#include "libs/identity/profile_codec.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/privacy_drop_alert_ids.h"
#include "libs/lua/privacy_drop_alert_log.h"
#include "libs/lua/privacy_drop_index.h"
#include "libs/lua/privacy_drop_journey.h"
#include "libs/lua/privacy_drop_keys.h"
#include "libs/lua/privacy_read_customer.h"
#include "libs/lua/privacy_release_pending.h"
#include "libs/lua/privacy_tombstone_root.h"
#include "libs/lua/privacy_tombstone_source.h"
#include "libs/outbox/outbox.h"
#include "libs/privacy/privacy_internal.h"
#include "libs/privacy/privacy_store.h"
#include "onestory/v1/identity.pb.h"

namespace onestory::privacy {
namespace {

using internal::FindMergedSources;
using internal::MergedSource;
using internal::Transient;
using internal::ValidateReason;
using redis::Reply;

// The pending record: "<token>|<updated ms>|<events>|<identifiers>|<sources, comma-separated>".
struct PendingRecord {
  std::string token;
  int64_t updated_ms = 0;
  int64_t events = -1;
  int64_t identifiers = -1;
  std::vector<std::string> sources;
};

PendingRecord ParseRecord(absl::string_view value) {
  PendingRecord r;
  std::vector<std::string> parts = absl::StrSplit(value, '|');
  if (parts.size() > 0) r.token = parts[0];
  if (parts.size() > 1) absl::SimpleAtoi(parts[1], &r.updated_ms);
  if (parts.size() > 2 && !absl::SimpleAtoi(parts[2], &r.events)) r.events = -1;
  if (parts.size() > 3 && !absl::SimpleAtoi(parts[3], &r.identifiers)) r.identifiers = -1;
  if (parts.size() > 4) r.sources = absl::StrSplit(parts[4], ',', absl::SkipEmpty());
  return r;
}

}  // namespace

struct PrivacyStore::EraseRun {
  std::string tenant;
  std::string root;
  std::string token;
  absl::Time deadline;
  bool claimed = false;              // this run wrote the pending record before the tombstone
  std::vector<std::string> sources;  // merged into root: erased with it
  int64_t events = -1;
  int64_t identifiers = -1;
  struct Customer {
    std::string id;
    std::vector<std::string> identifier_fields;
    std::vector<std::string> case_ids;
    std::vector<std::string> case_records;  // (case id, record JSON) pairs
    std::set<std::string> merge_ids;        // its merge history
    std::set<std::string> staging_ids;      // merges its merge state names
    std::vector<std::string> match_keys;    // of its profile, in the merge suggestion index
    int64_t events = 0;
  };
  std::vector<Customer> customers;  // root first
  Callback<v1::EraseCustomerResponse> done;

  std::string field() const { return absl::StrCat(tenant, "/", root); }
  std::vector<std::string> all_ids() const {
    std::vector<std::string> ids = {root};
    ids.insert(ids.end(), sources.begin(), sources.end());
    return ids;
  }
  std::string record() const {
    return absl::StrCat(token, "|", NowMillis(), "|", events, "|", identifiers, "|",
                        absl::StrJoin(sources, ","));
  }
};

void PrivacyStore::Erase(const v1::EraseCustomerRequest& request, absl::Time deadline,
                         Callback<v1::EraseCustomerResponse> done) {
  if (absl::Status st = ValidateTenant(request.tenant()); !st.ok()) return done(st);
  if (absl::Status st = ValidateReason(request.reason()); !st.ok()) return done(st);
  auto run = std::make_shared<EraseRun>();
  run->tenant = request.tenant();
  run->deadline = deadline;
  run->done = std::move(done);
  bool by_identifier = request.customer().has_identifier();
  identity_->ResolveRef(
      request.tenant(), "customer", request.customer(), false, deadline,
      [this, run, by_identifier](absl::StatusOr<identity::IdentityStore::Resolved> who) {
        if (!who.ok()) return run->done(who.status());
        StartErase(run, who->customer_id, by_identifier, 0);
      });
}

void PrivacyStore::StartErase(std::shared_ptr<EraseRun> run, const std::string& customer_id,
                              bool by_identifier, int hops) {
  keys::CustomerKeys ck(run->tenant, customer_id);
  client_->Command(
      {"HMGET", ck.profile(), "created_at", "erased_at", "merged_into"}, run->deadline,
      [this, run, customer_id, by_identifier, hops](absl::StatusOr<Reply> r) {
        if (!r.ok()) return run->done(r.status());
        if (r->elements.size() != 3)
          return run->done(absl::InternalError("unexpected HMGET reply"));
        const auto& f = r->elements;
        run->root = customer_id;
        if (f[1].is_string()) {
          // Erased already: finish an erase left unfinished, else say so.
          return client_->Command({"HGET", keys::PendingErasuresKey(), run->field()}, run->deadline,
                                  [this, run, by_identifier](absl::StatusOr<Reply> pending) {
                                    if (!pending.ok()) return run->done(pending.status());
                                    if (pending->is_string())
                                      return ContinueErase(run, pending->str);
                                    if (by_identifier) {
                                      return run->done(absl::NotFoundError(
                                          "customer.identifier: no customer has this identifier"));
                                    }
                                    v1::EraseCustomerResponse resp;
                                    resp.set_customer_id(run->root);
                                    resp.set_already_erased(true);
                                    run->done(std::move(resp));
                                  });
        }
        if (!f[0].is_string()) {
          return run->done(
              absl::NotFoundError(absl::StrCat("customer: customer ", customer_id, " not found")));
        }
        if (f[2].is_string()) {
          // Merged into another: the same person; erase the customer the merges lead to.
          if (hops + 1 > identity::kMaxMergeHops) {
            return run->done(absl::InternalError("merge chain longer than 16 customers"));
          }
          return StartErase(run, f[2].str, by_identifier, hops + 1);
        }
        run->token = NewRandomId("er_");
        client_->Command({"HSETNX", keys::PendingErasuresKey(), run->field(), run->record()},
                         run->deadline, [this, run](absl::StatusOr<Reply> claim) {
                           if (!claim.ok()) return run->done(claim.status());
                           run->claimed = claim->integer == 1;
                           Log(LogLevel::kInfo, "erase.started",
                               {{"tenant", run->tenant}, {"customer", run->root}});
                           Step(run, "erase.tombstone", &PrivacyStore::Tombstone);
                         });
      });
}

void PrivacyStore::ContinueErase(std::shared_ptr<EraseRun> run, const std::string& record) {
  PendingRecord rec = ParseRecord(record);
  run->token = rec.token.empty() ? NewRandomId("er_") : rec.token;
  run->events = rec.events;
  run->identifiers = rec.identifiers;
  run->sources = rec.sources;
  run->claimed = false;
  Step(run, "erase.tombstone", &PrivacyStore::Tombstone);
}

void PrivacyStore::Step(std::shared_ptr<EraseRun> run, const char* name,
                        void (PrivacyStore::*step)(std::shared_ptr<EraseRun>)) {
  if (absl::Status st = steps::CheckFailpoint(failpoint_, name); !st.ok()) {
    return run->done(std::move(st));
  }
  (this->*step)(run);
}

void PrivacyStore::SaveRecord(std::shared_ptr<EraseRun> run, absl::AnyInvocable<void()> then) {
  client_->Command({"HSET", keys::PendingErasuresKey(), run->field(), run->record()}, run->deadline,
                   [run, then = std::move(then)](absl::StatusOr<Reply> r) mutable {
                     if (!r.ok()) return run->done(r.status());
                     then();
                   });
}

void PrivacyStore::Tombstone(std::shared_ptr<EraseRun> run) {
  keys::CustomerKeys ck(run->tenant, run->root);
  lua::PrivacyTombstoneRoot call;
  call.profile = ck.profile();
  call.erased_profile = ck.erased_profile();
  call.customer_id = run->root;
  call.now_ms = absl::StrCat(NowMillis());
  call.notify = ck.channel();
  client_->Fcall(call, run->deadline, [this, run](absl::StatusOr<Reply> r) {
    // Refused: nothing changed; the pending record goes when this run wrote it (or, for a
    // recovered record, when the customer does not exist).
    auto refuse = [this, run](absl::Status status) {
      if (Transient(status)) return run->done(std::move(status));
      bool gone = status.code() == absl::StatusCode::kNotFound;
      if (!run->claimed && !gone) return run->done(std::move(status));
      auto finish = [run, status](absl::StatusOr<Reply>) { run->done(status); };
      if (run->claimed) {
        lua::PrivacyReleasePending release;
        release.pending = keys::PendingErasuresKey();
        release.field = run->field();
        release.token = run->token;
        return client_->Fcall(release, run->deadline, std::move(finish));
      }
      client_->Command({"HDEL", keys::PendingErasuresKey(), run->field()}, run->deadline,
                       std::move(finish));
    };
    if (!r.ok()) return refuse(r.status());
    if (!r->is_array() || r->elements.size() != 2) {
      return run->done(absl::InternalError("unexpected reply from privacy_tombstone_root"));
    }
    if (r->elements[0].str == "moved") {
      return refuse(absl::AbortedError(absl::StrCat("customer ", run->root, " was merged into ",
                                                    r->elements[1].str, " meanwhile; retry")));
    }
    // Tombstoned now or by an earlier run: from here the erase only goes forward.
    SaveRecord(run, [this, run] { Step(run, "erase.closure", &PrivacyStore::Closure); });
  });
}

void PrivacyStore::Closure(std::shared_ptr<EraseRun> run) {
  FindMergedSources(client_, run->tenant, run->root, run->deadline,
                    [this, run](absl::StatusOr<std::vector<MergedSource>> found) {
                      if (!found.ok()) return run->done(found.status());
                      for (const MergedSource& m : *found) {
                        if (std::find(run->sources.begin(), run->sources.end(), m.customer_id) ==
                            run->sources.end()) {
                          run->sources.push_back(m.customer_id);
                        }
                      }
                      ReadCustomers(run);
                    });
}

void PrivacyStore::ReadCustomers(std::shared_ptr<EraseRun> run) {
  std::vector<std::string> ids = run->all_ids();
  run->customers.assign(ids.size(), {});
  auto b = Barrier::Make(ids.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    // The counts, once: from the first run that read everything.
    if (run->events < 0) run->events = run->customers[0].events;
    if (run->identifiers < 0) {
      std::set<std::string> fields;
      for (const auto& c : run->customers) {
        fields.insert(c.identifier_fields.begin(), c.identifier_fields.end());
      }
      run->identifiers = static_cast<int64_t>(fields.size());
    }
    SaveRecord(run, [this, run] { Step(run, "erase.sources", &PrivacyStore::TombstoneSources); });
  });
  // The suggestion keys are made as MergeSuggester made them: with the tenant's default country.
  const identity::PhoneCountry* country = identity_->DefaultCountryOf(run->tenant);
  for (size_t i = 0; i < ids.size(); ++i) {
    keys::CustomerKeys ck(run->tenant, ids[i]);
    run->customers[i].id = ids[i];
    lua::PrivacyReadCustomer read;
    read.identifiers = ck.identifiers();
    read.cases = ck.cases();
    read.merge_history = ck.merge_history();
    read.merge_state = ck.merge_state();
    read.timeline = ck.timeline();
    read.erased_profile = ck.erased_profile();
    client_->Fcall(read, run->deadline, [run, b, i, country](absl::StatusOr<Reply> r) {
      if (!r.ok()) return b->Arrive(r.status());
      if (!r->is_array() || r->elements.size() != 6) {
        return b->Arrive(absl::InternalError("unexpected reply from privacy_read_customer"));
      }
      EraseRun::Customer& c = run->customers[i];
      for (const Reply& f : r->elements[0].elements) c.identifier_fields.push_back(f.str);
      const auto& cases = r->elements[1].elements;
      for (size_t k = 0; k + 1 < cases.size(); k += 2) {
        c.case_ids.push_back(cases[k].str);
        c.case_records.push_back(cases[k].str);
        c.case_records.push_back(cases[k + 1].str);
      }
      for (const Reply& m : r->elements[2].elements) c.merge_ids.insert(m.str);
      for (const Reply& f : r->elements[3].elements) {
        // "<merge id>:<what>"
        c.staging_ids.insert(f.str.substr(0, f.str.find(':')));
      }
      c.events = r->elements[4].integer;
      // The keys its profile put it under in the merge suggestion index.
      v1::Profile was = identity::ProfileFromHashes(c.id, r->elements[5], Reply());
      for (const identity::MatchKey& k : identity::ProfileMatchKeys(was, country)) {
        c.match_keys.push_back(k.key);
      }
      b->Arrive(absl::OkStatus());
    });
  }
}

void PrivacyStore::TombstoneSources(std::shared_ptr<EraseRun> run) {
  auto b = Barrier::Make(run->sources.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.identifiers", &PrivacyStore::DropIdentifiers);
  });
  std::string now = absl::StrCat(NowMillis());
  for (const std::string& s : run->sources) {
    keys::CustomerKeys ck(run->tenant, s);
    lua::PrivacyTombstoneSource call;
    call.profile = ck.profile();
    call.erased_profile = ck.erased_profile();
    call.now_ms = now;
    call.notify = ck.channel();
    client_->Fcall(call, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::DropIdentifiers(std::shared_ptr<EraseRun> run) {
  std::set<std::string> fields;
  for (const auto& c : run->customers) {
    fields.insert(c.identifier_fields.begin(), c.identifier_fields.end());
  }
  auto b = Barrier::Make(fields.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.suggestions", &PrivacyStore::DropSuggestions);
  });
  std::vector<std::string> owners = run->all_ids();
  for (const std::string& field : fields) {
    size_t colon = field.find(':');
    std::string index =
        keys::IdentifierKey(run->tenant, keys::IdentifierTypeFromName(field.substr(0, colon)),
                            colon == std::string::npos ? "" : field.substr(colon + 1));
    lua::PrivacyDropIndex call;
    call.index = index;
    call.erased = owners;
    client_->Fcall(call, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::DropSuggestions(std::shared_ptr<EraseRun> run) {
  std::set<std::string> match_keys;
  for (const auto& c : run->customers) match_keys.insert(c.match_keys.begin(), c.match_keys.end());
  auto b = Barrier::Make(match_keys.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.outbox", &PrivacyStore::DrainOutboxes);
  });
  std::vector<std::string> ids = run->all_ids();
  for (const std::string& k : match_keys) {
    // A set left empty goes with its last member (and the value its key names with it).
    std::vector<std::string> cmd = {"SREM", identity::MatchSetKey(run->tenant, k)};
    cmd.insert(cmd.end(), ids.begin(), ids.end());
    client_->Command(std::move(cmd), run->deadline,
                     [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

// The effects the customers' writes left in their outboxes (libs/outbox) are applied first,
// so the alerts and counters they add are there for the next steps to remove; their pending
// marks go with them (their tombstones refuse new writes).
void PrivacyStore::DrainOutboxes(std::shared_ptr<EraseRun> run) {
  auto b = Barrier::Make(run->customers.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.engagement", &PrivacyStore::DropEngagement);
  });
  for (const auto& c : run->customers) {
    outbox::Drain(
        client_, run->tenant, c.id, /*mark=*/0, run->deadline,
        [this, run, b, id = c.id](absl::StatusOr<int64_t> n) {
          if (!n.ok()) return b->Arrive(n.status());
          client_->Command(
              {"ZREM", keys::PendingOutboxKey(run->tenant, id), absl::StrCat(run->tenant, "|", id)},
              run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
        });
  }
}

void PrivacyStore::DropEngagement(std::shared_ptr<EraseRun> run) {
  std::set<std::string> cases;
  for (const auto& c : run->customers) cases.insert(c.case_ids.begin(), c.case_ids.end());
  std::vector<std::string> ids = run->all_ids();
  // One command or call per key, each in its own slot. Due promises and journey entries name the
  // customer a case was with when it was written (a merge moves them to its target): every pair
  // of erased customer and case is removed, from that customer's bucket.
  std::vector<std::vector<std::string>> commands;
  for (const std::string& id : ids) {
    const std::string owner = absl::StrCat(run->tenant, "|", id);
    if (!cases.empty()) {
      std::vector<std::string> due = {"ZREM",
                                      keys::DuePromisesKey(keys::DueBucket(run->tenant, id))};
      for (const std::string& c : cases) due.push_back(absl::StrCat(owner, "|", c));
      commands.push_back(std::move(due));
    }
    commands.push_back(
        {"ZREM", keys::TenantKeys(run->tenant, keys::TenantBucket(id)).activity(), id});
  }
  // The high-water marks of the erased customers' outboxes: in every bucket an outbox of theirs
  // may have applied entries to (a merge's entries name other customers' buckets).
  for (int b = 0; b < keys::kTenantBuckets; ++b) {
    const keys::TenantKeys tk(run->tenant, b);
    std::vector<std::string> applied = {"HDEL", tk.journey_applied()};
    std::vector<std::string> applied_at = {"ZREM", tk.journey_applied_at()};
    applied.insert(applied.end(), ids.begin(), ids.end());
    applied_at.insert(applied_at.end(), ids.begin(), ids.end());
    commands.push_back(std::move(applied));
    commands.push_back(std::move(applied_at));
  }
  for (int b = 0; b < keys::kDueBuckets; ++b) {
    std::vector<std::string> due_applied = {"HDEL", keys::DuePromisesAppliedKey(b)};
    std::vector<std::string> due_applied_at = {"ZREM", keys::DuePromisesAppliedAtKey(b)};
    for (const std::string& id : ids) {
      due_applied.push_back(absl::StrCat(run->tenant, "|", id));
      due_applied_at.push_back(absl::StrCat(run->tenant, "|", id));
    }
    commands.push_back(std::move(due_applied));
    commands.push_back(std::move(due_applied_at));
  }
  std::vector<std::string> records;
  for (const auto& c : run->customers) {
    records.insert(records.end(), c.case_records.begin(), c.case_records.end());
  }
  const size_t journey_calls = records.empty() ? 0 : ids.size();
  auto b = Barrier::Make(commands.size() + journey_calls, [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.alerts", &PrivacyStore::DropAlerts);
  });
  for (auto& cmd : commands) {
    client_->Command(std::move(cmd), run->deadline,
                     [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
  // The open-case index: each erased customer's entries, in its own bucket.
  for (size_t i = 0; i < journey_calls; ++i) {
    lua::PrivacyDropJourney call;
    call.journey_open = keys::TenantKeys(run->tenant, keys::TenantBucket(ids[i])).journey_open();
    call.customer = ids[i];
    call.cases = records;
    client_->Fcall(call, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

// Alerts live in the bucket of the customer that raised them (keys::TenantBucket): the erased
// customer's and its merged sources' buckets hold all of theirs. Each bucket is cleaned in its
// own slot, all at once.
void PrivacyStore::DropAlerts(std::shared_ptr<EraseRun> run) {
  std::set<int> buckets;
  for (const std::string& id : run->all_ids()) buckets.insert(keys::TenantBucket(id));
  auto b = Barrier::Make(buckets.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.merges", &PrivacyStore::DropMerges);
  });
  for (int bucket : buckets) {
    keys::TenantKeys tk(run->tenant, bucket);
    lua::PrivacyDropAlertLog call;
    call.alert_log = tk.alert_log();
    call.rebuild = tk.alert_log_rebuild();
    call.alert_ids = tk.alert_ids();
    call.alert_open = tk.alert_open();
    call.alert_acks = tk.alert_acks();
    call.erased = run->all_ids();
    client_->Fcall(call, run->deadline, [this, run, b, bucket](absl::StatusOr<Reply> r) {
      if (!r.ok()) return b->Arrive(r.status());
      DropAlertIds(run, bucket, "0", [b](absl::Status st) { b->Arrive(st); });
    });
  }
}

void PrivacyStore::DropAlertIds(std::shared_ptr<EraseRun> run, int bucket, std::string cursor,
                                absl::AnyInvocable<void(absl::Status)> done) {
  keys::TenantKeys tk(run->tenant, bucket);
  lua::PrivacyDropAlertIds call;
  call.alert_ids = tk.alert_ids();
  call.alert_open = tk.alert_open();
  call.alert_acks = tk.alert_acks();
  call.cursor = std::move(cursor);
  call.erased = run->all_ids();
  client_->Fcall(
      call, run->deadline,
      [this, run, bucket, done = std::move(done)](absl::StatusOr<Reply> r) mutable {
        if (!r.ok()) return done(r.status());
        if (!r->is_array() || r->elements.size() != 2) {
          return done(absl::InternalError("unexpected reply from privacy_drop_alert_ids"));
        }
        std::string next = r->elements[0].str;
        if (next != "0") return DropAlertIds(run, bucket, next, std::move(done));
        done(absl::OkStatus());
      });
}

void PrivacyStore::DropMerges(std::shared_ptr<EraseRun> run) {
  std::set<std::string> merges;
  for (const auto& c : run->customers) merges.insert(c.merge_ids.begin(), c.merge_ids.end());
  auto b = Barrier::Make(merges.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.keys", &PrivacyStore::DropKeys);
  });
  std::vector<std::string> ids = run->all_ids();
  for (const std::string& m : merges) {
    std::string key = keys::MergeKey(run->tenant, m);
    // The record names the other customer of the merge: its history forgets the merge first.
    client_->Command(
        {"HGET", key, "rec"}, run->deadline, [this, run, b, key, m, ids](absl::StatusOr<Reply> r) {
          if (!r.ok()) return b->Arrive(r.status());
          v1::MergeRecord rec;
          std::vector<std::string> others;
          if (r->is_string() && rec.ParseFromString(r->str)) {
            for (const std::string& c : {rec.source_customer_id(), rec.target_customer_id()}) {
              if (!c.empty() && std::find(ids.begin(), ids.end(), c) == ids.end()) {
                others.push_back(c);
              }
            }
          }
          auto forget = [this, run, b, key, m]() {
            client_->Command(
                {"DEL", key}, run->deadline, [this, run, b, m](absl::StatusOr<Reply> r) {
                  if (!r.ok()) return b->Arrive(r.status());
                  client_->Command(
                      {"SREM", keys::PendingMergesKey(), absl::StrCat(run->tenant, "/", m)},
                      run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
                });
          };
          auto each = Barrier::Make(others.size(), [b, forget](absl::Status st) mutable {
            if (!st.ok()) return b->Arrive(st);
            forget();
          });
          for (const std::string& o : others) {
            client_->Command({"ZREM", keys::CustomerKeys(run->tenant, o).merge_history(), m},
                             run->deadline,
                             [each](absl::StatusOr<Reply> r) { each->Arrive(r.status()); });
          }
        });
  }
}

void PrivacyStore::DropKeys(std::shared_ptr<EraseRun> run) {
  auto b = Barrier::Make(run->customers.size(), [this, run](absl::Status st) {
    if (!st.ok()) return run->done(st);
    Step(run, "erase.done", &PrivacyStore::FinishErase);
  });
  std::string now = absl::StrCat(NowMillis());
  for (const auto& c : run->customers) {
    keys::CustomerKeys ck(run->tenant, c.id);
    lua::PrivacyDropKeys call;
    call.profile = ck.profile();
    call.now_ms = now;
    call.others = {ck.identifiers(), ck.timeline(),
                   ck.dedup(),       ck.conversations(),
                   ck.merge_state(), ck.merge_history(),
                   ck.remap(),       ck.conversation_records(),
                   ck.cases(),       ck.facts(),
                   ck.contacts(),    ck.contact_channels(),
                   ck.signals(),     ck.timeline_rebuild(),
                   ck.redaction(),   ck.erased_profile(),
                   ck.outbox()};
    std::set<std::string> merges = c.merge_ids;
    merges.insert(c.staging_ids.begin(), c.staging_ids.end());
    for (const std::string& m : merges) {
      call.others.push_back(ck.merge_staging(m));
      call.others.push_back(ck.merge_staging_dedup(m));
      call.others.push_back(ck.merge_staging_remap(m));
    }
    client_->Fcall(call, run->deadline, [b](absl::StatusOr<Reply> r) { b->Arrive(r.status()); });
  }
}

void PrivacyStore::FinishErase(std::shared_ptr<EraseRun> run) {
  client_->Command(
      {"HDEL", keys::PendingErasuresKey(), run->field()}, run->deadline,
      [run](absl::StatusOr<Reply> r) {
        if (!r.ok()) return run->done(r.status());
        Log(LogLevel::kInfo, "erase.done",
            {{"tenant", run->tenant},
             {"customer", run->root},
             {"merged", absl::StrJoin(run->sources, ",")},
             {"events", absl::StrCat(run->events)},
             {"identifiers", absl::StrCat(run->identifiers)}});
        v1::EraseCustomerResponse resp;
        resp.set_customer_id(run->root);
        for (const std::string& s : run->sources) resp.add_merged_customer_ids(s);
        resp.set_events_erased(std::max<int64_t>(0, run->events));
        resp.set_identifiers_erased(static_cast<int32_t>(std::max<int64_t>(0, run->identifiers)));
        run->done(std::move(resp));
      });
}

void PrivacyStore::RecoverPending(absl::Time deadline, Callback<int> done,
                                  absl::Duration older_than) {
  steps::RecoverPendingHash(
      client_, keys::PendingErasuresKey(), "erase", older_than,
      [](absl::string_view value) { return ParseRecord(value).updated_ms; }, deadline,
      [this, deadline](const steps::PendingRun& d, steps::Report report) {
        auto run = std::make_shared<EraseRun>();
        run->tenant = d.tenant;
        run->root = d.customer;
        run->deadline = deadline;
        run->done = [d, report = std::move(report)](
                        absl::StatusOr<v1::EraseCustomerResponse> r) mutable {
          if (!r.ok()) {
            Log(LogLevel::kWarning, "erase.recovery_failed",
                {{"tenant", d.tenant}, {"customer", d.customer}, {"error", r.status().ToString()}});
          }
          report(r.ok());
        };
        ContinueErase(run, d.value);
      },
      // Then the redactions.
      [this, deadline, older_than, done = std::move(done)](absl::StatusOr<int> erased) mutable {
        if (!erased.ok()) return done(erased.status());
        RecoverRedactions(
            deadline, older_than,
            [erased = *erased, done = std::move(done)](absl::StatusOr<int> n) mutable {
              if (!n.ok()) return done(n.status());
              done(erased + *n);
            });
      });
}
}  // namespace onestory::privacy
