// PrivacyStore: what a customer may ask of their data (PrivacyService): erase everything stored
// about them, export it, and correct or remove one event's text.
//
//   PrivacyStore privacy(&redis_client, &identity_store);
//   privacy.Erase(request, deadline, [](absl::StatusOr<v1::EraseCustomerResponse> r) { ... });
//   privacy.Redact(request, deadline, [](absl::StatusOr<v1::RedactEventResponse> r) { ... });
//   privacy.ExportBegin(request, deadline, ...);   // then ExportEvents page by page
//   privacy.RecoverPending(deadline, done);         // every few seconds, in every server
//
// Erase. A customer's keys share one hash tag; the identifier index, the tenant's alerts,
// journey and activity, the due-promise index, the merge records and the customers merged into
// it do not. So an erase is a durable record (os:{erasures}:pending, keys::PendingErasuresKey)
// and these steps, each an atomic function (libs/privacy/lua/) or an idempotent command, each
// safe to run again:
//   pending     the record is written ("<tenant>/<customer>"): from here a crash is finished by
//               a retry or by RecoverPending.
//   tombstone   one function: the profile becomes {erased_at} (no personal data; the old fields
//               move to a key of the customer the `keys` step deletes). Every read and write
//               of the customer runs os_guard on the profile (libs/identity/merged.h), so from
//               here all of them answer NOT_FOUND "was erased": no write racing with the
//               erase can bring the customer back, and nothing about it is served. Refused
//               (ABORTED, nothing changed) while a merge or unmerge holds the customer.
//   closure     the customers merged into it (their merge records, recursively) are the same
//               person: they are erased with it. The list and the counts go into the record
//               before anything is deleted, so a rerun knows them after the merge records went.
//   sources     each merged customer gets its tombstone.
//   identifiers each index entry naming one of them is deleted (compare-and-delete).
//   suggestions they leave the merge suggestion sets their profiles put them in (whose keys
//               name attribute values: an emptied set goes).
//   engagement  their due promises, journey entries (the tenant's open-case index, for the cases
//               each of them holds, and the per-stage layout before it) and retention
//               activity.
//   alerts      the tenant's alert log is rebuilt without their alerts (deleted stream entries
//               would stay in memory), and their ids leave the ids, open and acks keys.
//   merges      the merge records naming them, and their entries in the other customers'
//               histories and in the pending merges.
//   keys        every key of each customer but the tombstone: identifiers, timeline, dedup,
//               conversations, facts, cases, contacts, signals, merge state, history, remap and
//               staging keys.
//   done        the record goes.
// Every list a step needs is read from keys only the `keys` step deletes, so a rerun from any
// point redoes what is left; personal data is unreachable from the tombstone on. An index entry
// still naming the erased customer meanwhile is as good as none (identity_store.h).
//
// Redact. Redis streams cannot change an entry in place, XDEL only marks an entry deleted (its
// bytes stay in memory and in snapshots) and XADD cannot insert below the last id, so the
// timeline is rebuilt: copied entry by entry with its own ids into a staging stream
// (k.timeline_rebuild()), the one event with its new text, which then takes the timeline's
// place. That copy is done in bounded steps, so no command of a redaction holds Redis longer
// than one step, whatever the timeline's size (each step copies at most kRedactChunkEntries
// entries and kRedactChunkBytes bytes plus one entry):
//   begin   the customer is listed in os:{redactions}:pending (keys::PendingRedactionsKey) and
//           its redaction hash (k.redaction()) gets the record: a token (from a counter:
//           a later redaction's sorts after), the event id, the new text, the event as it was and
//           as it will be, and the customers merged into it. From here a retry of the same call
//           (same tenant, customer, event id and new text) or RecoverPending finishes it; another
//           redaction of the same timeline finishes this one first.
//   copy    one function call per step copies the next entries after the last id copied (kept in
//           the redaction hash with the copy: a rerun goes on where it stopped, two runs at
//           once take turns) until it reaches the timeline's end.
//   swap    one function copies what was appended since the last step (when that is more
//           than one step's bounds it answers "more" and the copy goes on: appends are never
//           held), drops the copies of entries deleted meanwhile (retention trims the
//           oldest), and when the copy then holds exactly the timeline's entries, gives it
//           the timeline's last id, entries-added and max-deleted id (XSETID), UNLINKs the
//           old stream (freed in the background) and renames the copy over it. So appends
//           made during the redaction are in the timeline once, and cursors and page tokens
//           stay valid. A copy that does not match (a merge or unmerge rebuilt the timeline
//           meanwhile) starts over; the swap waits (ABORTED, retry) while a merge holds the
//           customer. The copies kept by the customers merged into it (for an Unmerge) are
//           rebuilt first, the same way; the timeline itself last.
//   records the copies of the event's text kept beside the timeline, in the customer and in
//           each customer merged into it: a case update's note (Case.last_note) and promise
//           text, a resolution, a conversation's outcome, and the values (and previous
//           values) of the facts the event recorded (RecordFacts, Handoff's collected facts).
//           A copy the new text no longer holds is replaced by the new body (a note) or
//           cleared.
//   done    the record goes; the answer is OK only now.
// Timelines longer than kMaxRedactEvents are refused: the copy doubles the timeline's memory
// while it runs, and the call lasts as long as the copy (tools/bench_redact measures it).
//
// Thread-safe. Callbacks run on the Redis loop thread (see libs/common/callback.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "libs/common/callback.h"
#include "libs/identity/identity_store.h"
#include "libs/privacy/redactor.h"
#include "libs/redis/client.h"
#include "libs/steps/steps.h"
#include "onestory/v1/privacy.pb.h"

namespace onestory::privacy {

// EraseCustomerRequest.reason and RedactEventRequest.reason.
inline constexpr size_t kMaxReasonBytes = 200;
// Events per "events" export document (and conversations, cases, facts per document).
inline constexpr int kExportPageSize = 200;
// The longest timeline RedactEvent rebuilds (RESOURCE_EXHAUSTED beyond). Not for Redis's sake
// (every command of a redaction is bounded, whatever the timeline's size) but for memory and
// time: the copy doubles the timeline's memory while it runs (6.4 GB more at 100,000 events of
// 64 KiB), and the call lasts as long as the copy.
inline constexpr int64_t kMaxRedactEvents = 100000;
// One step of a redaction's copy copies at most this many entries ...
inline constexpr int kRedactChunkEntries = 256;
// ... and at most this many bytes of entry fields and values, plus one entry: a batch is never
// larger than the bytes left allow for entries of kRedactLargestEntryBytes.
inline constexpr int64_t kRedactChunkBytes = 256 * 1024;
// The largest stream entry an append stores (a 64 KiB body, a 1 KiB summary, attributes and
// ids, with room to spare).
inline constexpr int64_t kRedactLargestEntryBytes = 80 * 1024;
// RecoverPending finishes erasures whose record has not changed for this long.
inline constexpr absl::Duration kEraseRecoveryAfter = absl::Seconds(30);

class PrivacyStore {
 public:
  // A test hook: called with each erase step's name ("erase.tombstone", "erase.closure",
  // "erase.sources", "erase.identifiers", "erase.suggestions", "erase.engagement",
  // "erase.alerts", "erase.merges",
  // "erase.keys", "erase.done") and each redaction step's ("redact.begin", "redact.copy" before
  // every copy step, "redact.swap" before every swap attempt, "redact.records", "redact.done")
  // before it runs; returning true stops the run there as a crash would (UNAVAILABLE, nothing
  // cleaned up). See libs/steps/steps.h.
  using Failpoint = steps::Failpoint;

  // `redactor`: the masking of a redaction's new text before it is stored
  // (privacy::OrCardsOnly: null masks card numbers only). Not owned; must outlive the store.
  PrivacyStore(redis::Client* client, identity::IdentityStore* identity,
               Failpoint failpoint = nullptr, const Redactor* redactor = nullptr)
      : client_(client),
        identity_(identity),
        failpoint_(std::move(failpoint)),
        redactor_(redactor) {}

  // Erases the customer (named by id or identifier, merges followed to the customer they lead
  // to) and every customer merged into it. Erasing an erased customer answers already_erased
  // (an erase left unfinished is finished first). INVALID_ARGUMENT naming the field, NOT_FOUND,
  // ABORTED while a merge holds the customer, UNAVAILABLE (retry: the retry finishes it).
  void Erase(const v1::EraseCustomerRequest& request, absl::Time deadline,
             Callback<v1::EraseCustomerResponse> done);

  // Finishes every erase and every redaction whose record is older than `older_than`. Returns
  // how many finished. Safe to run in every server at once (the steps are idempotent).
  void RecoverPending(absl::Time deadline, Callback<int> done,
                      absl::Duration older_than = kEraseRecoveryAfter);

  // Replaces one event's summary and body (and sets its redacted_at) everywhere it is stored.
  // OK only when the redaction is complete. INVALID_ARGUMENT naming the field, NOT_FOUND
  // (customer or event), ABORTED (held by a merge, or merged meanwhile: retry),
  // RESOURCE_EXHAUSTED (timeline over kMaxRedactEvents), UNAVAILABLE or DEADLINE_EXCEEDED
  // (part done: a retry of the same call, or RecoverPending, finishes it).
  void Redact(const v1::RedactEventRequest& request, absl::Time deadline,
              Callback<v1::RedactEventResponse> done);

  // Export, read in parts so a reactor writes each before reading the next.
  struct ExportHead {
    std::string customer_id;  // merges followed
    // The "profile" document, then "conversations", "cases" and "facts" documents (each at
    // least one, at most kExportPageSize records each).
    std::vector<std::string> documents;
    int64_t conversations = 0;
    int64_t cases = 0;
    int64_t facts = 0;
  };
  void ExportBegin(const v1::ExportCustomerRequest& request, absl::Time deadline,
                   Callback<ExportHead> done);

  struct EventPage {
    std::string document;        // {"section":"events","events":[...]}; empty when count is 0
    int count = 0;               // events in it (< kExportPageSize: the last page)
    std::string last_stream_id;  // where the next page starts
  };
  // Up to kExportPageSize events after stream id `after` ("0-0": from the start), oldest first.
  void ExportEvents(const std::string& tenant, const std::string& customer_id,
                    const std::string& after, absl::Time deadline, Callback<EventPage> done);

  // The final {"section":"end","counts":{...}} document.
  static std::string ExportEnd(const ExportHead& head, int64_t events);

  // The redactor given at construction (null: cards only), for whoever records a reason of the
  // same call elsewhere (the audit log).
  const Redactor* redactor() const { return redactor_; }

 private:
  struct EraseRun;
  void StartErase(std::shared_ptr<EraseRun> run, const std::string& customer_id, bool by_identifier,
                  int hops);
  void ContinueErase(std::shared_ptr<EraseRun> run, const std::string& record);
  void Tombstone(std::shared_ptr<EraseRun> run);
  void Closure(std::shared_ptr<EraseRun> run);
  void ReadCustomers(std::shared_ptr<EraseRun> run);
  void TombstoneSources(std::shared_ptr<EraseRun> run);
  void DropIdentifiers(std::shared_ptr<EraseRun> run);
  void DropSuggestions(std::shared_ptr<EraseRun> run);
  void DrainOutboxes(std::shared_ptr<EraseRun> run);
  void DropEngagement(std::shared_ptr<EraseRun> run);
  void DropAlerts(std::shared_ptr<EraseRun> run);
  // One bucket's alert ids, an HSCAN page per call, then `done`.
  void DropAlertIds(std::shared_ptr<EraseRun> run, int bucket, std::string cursor,
                    absl::AnyInvocable<void(absl::Status)> done);
  void DropMerges(std::shared_ptr<EraseRun> run);
  void DropKeys(std::shared_ptr<EraseRun> run);
  void FinishErase(std::shared_ptr<EraseRun> run);
  // Runs `step` unless the failpoint stops the run there.
  void Step(std::shared_ptr<EraseRun> run, const char* name,
            void (PrivacyStore::*step)(std::shared_ptr<EraseRun>));
  void SaveRecord(std::shared_ptr<EraseRun> run, absl::AnyInvocable<void()> then);

  // The redaction's steps (redaction.cc).
  struct RedactRun;
  void RedactAttempt(std::shared_ptr<RedactRun> run, int helped);
  void BeginRedaction(std::shared_ptr<RedactRun> run, int helped, const std::string& sid,
                      const std::string& blob, const std::string& appended, int64_t length);
  void WriteRedaction(std::shared_ptr<RedactRun> run, int helped);
  // Runs the redaction whose record the customer's redaction hash holds; `then` gets its
  // answer.
  void ResumeRedaction(const std::string& tenant, const std::string& customer, absl::Time deadline,
                       Callback<v1::RedactEventResponse> then);
  void DriveRedaction(std::shared_ptr<RedactRun> run);
  void CopyStep(std::shared_ptr<RedactRun> run, bool swap);
  void RedactRecords(std::shared_ptr<RedactRun> run);
  void FinishRedaction(std::shared_ptr<RedactRun> run);
  bool RedactFailpoint(std::shared_ptr<RedactRun> run, const char* step);
  void RecoverRedactions(absl::Time deadline, absl::Duration older_than, Callback<int> done);

  redis::Client* client_;
  identity::IdentityStore* identity_;
  Failpoint failpoint_;
  const Redactor* redactor_;
};

}  // namespace onestory::privacy
