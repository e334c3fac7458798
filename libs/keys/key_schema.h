// The Redis key schema: every key OneStory writes is built here.
//
//   CustomerKeys k(tenant, customer_id);   // both already validated
//   k.profile()    -> "os:{acme:c:cus_1}:p"     hash: profile fields
//   k.identifiers()-> "os:{acme:c:cus_1}:ids"   hash: "<type>:<value>" -> linked_at ms
//   k.timeline()   -> "os:{acme:c:cus_1}:tl"    stream: one entry per event
//   k.dedup()      -> "os:{acme:c:cus_1}:dd"    hash: event_id -> stream id
//   k.conversations() -> "os:{acme:c:cus_1}:cv" hash: open conversation id -> JSON
//   k.channel()    -> "os:{acme:c:cus_1}:n"     pub/sub channel announcing appends
//   k.merge_state() -> "os:{acme:c:cus_1}:mg"   hash: per-merge progress markers and the
//                                               profile values a merge overwrote
//   k.merge_staging(m) -> "os:{acme:c:cus_1}:tl.m:<m>"  stream: a merge's rebuilt timeline
//   k.merge_staging_dedup(m), k.merge_staging_remap(m) -> ":dd.m:<m>", ":rm.m:<m>": its dedup
//                                               and remap hashes, renamed into place together
//   k.merge_staging_engagement(m) -> ":eg.m:<m>"  hash: engagement records a merge or an unmerge
//                                               copies into this customer's slot, then applies
//   k.merge_history() -> "os:{acme:c:cus_1}:mh" zset: merge id -> started ms
//   k.remap()      -> "os:{acme:c:cus_1}:rm"    hash: stream id before a merge renumbered the
//                                               timeline -> stream id now
//   k.conversation_records() -> ":cs"  hash: conversation id -> JSON record (libs/engagement)
//   k.cases() -> ":ca"      hash: case id -> JSON record
//   k.facts() -> ":fa"      hash: "<fact type>:<name>" -> JSON fact
//   k.contacts() -> ":ct"   zset: conversation id -> started ms (30 days)
//   k.contact_channels() -> ":cc"  zset: channel -> latest contact ms (30 days)
//   k.signals() -> ":sg"    hash: sentiment per day, negative streak, latest repeat contact
//   k.outbox() -> ":ob"     stream: effects on tenant-wide keys waiting to be applied
//                           (libs/outbox)
//   k.timeline_rebuild() -> ":tl.rw"  stream: the timeline being rebuilt by a redaction or an
//                           erase (libs/privacy)
//   k.erased_profile() -> ":p.er"  hash: the profile an erase under way replaced by its tombstone
//   k.redaction() -> ":rd"  hash: a redaction's record and progress
//   TenantKeys t(tenant, bucket): one bucket of a tenant's tenant-wide keys, "os:{acme:a:3}:..."
//                           (alerts), "os:{acme:j:3}:..." (journey), "os:{acme:au:3}:log"
//                           (audit log), "os:{acme:r:3}:..." (retention); a customer's effects
//                           go to bucket TenantBucket(customer id), readers merge all buckets
//                           (libs/timeline/bucket_cursor.h). Alerts: an alert in its customer's
//                           bucket (its id names the customer), each bucket's log capped at about
//                           100,000. Audit log: an entry naming a customer in that customer's
//                           bucket, one naming none in the buckets in turn; each bucket capped at
//                           its share of the tenant's max entries
//   TenantKeys t(tenant): the same keys before buckets, "os:{acme:a}:..."; read only to upgrade
//                           what an earlier version wrote (libs/engagement/alert_upgrade.h,
//                           libs/audit/audit_upgrade.h, libs/engagement/journey_upgrade.h)
//   DuePromisesKey(bucket) -> "os:{due:<n>.<k>}:z" zset: promises by due ms, bucket
//                           DueBucket(tenant, customer); DuePromisesKey() -> "os:{alerts}:due"
//                           the index before buckets, read only to upgrade
//   TenantRegistryKey() -> "os:{tenants}:all"  set: every tenant with an activity index
//   BucketUpgradeKey() -> "os:{tenants}:upgraded"  string: when a single Redis's unbucketed
//                           journey, activity and due keys were moved into buckets; with
//                           ".alerts" / ".audit": that a start found no alerts / audit entries
//                           left in the layout before buckets (libs/engagement/alert_upgrade.h,
//                           libs/audit/audit_upgrade.h)
//   MergeKey(tenant, m) -> "os:{acme:m:<m>}"  hash: one merge's record and step
//   PendingMergesKey() -> "os:{merges}:pending"  set: "<tenant>/<merge id>" with steps left
//   PendingErasuresKey() -> "os:{erasures}:pending"  hash: "<tenant>/<customer>" -> progress
//   PendingRedactionsKey() -> "os:{redactions}:pending"  hash: "<tenant>/<customer>" -> ms
//   PendingOutboxKey(tenant, id) -> "os:{ob:<0-15>}:pending"  zset: outboxes to drain
//   IdentifierKey(tenant, PHONE, "14155550100") -> "os:{acme:i:phone:14155550100}"
//                                                  string: owning customer id
//
// All keys of one customer share one hash tag, so a per-customer change is one atomic script
// and the schema works unchanged on Redis Cluster. Identifier index keys hash by identifier.
// Tenant and customer ids must be validated first (libs/common/validation.h): their character
// set has no '{', '}' or ':'. Identifier values are percent-encoded, so no input can close the
// hash tag or reach another tenant's or customer's keys. Thread-safe (pure).
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "onestory/v1/common.pb.h"

namespace onestory::keys {

class CustomerKeys {
 public:
  CustomerKeys(absl::string_view tenant, absl::string_view customer_id);
  std::string profile() const { return prefix_ + "p"; }
  std::string identifiers() const { return prefix_ + "ids"; }
  std::string timeline() const { return prefix_ + "tl"; }
  std::string dedup() const { return prefix_ + "dd"; }
  std::string conversations() const { return prefix_ + "cv"; }
  std::string channel() const { return prefix_ + "n"; }
  std::string merge_state() const { return prefix_ + "mg"; }
  std::string merge_staging(absl::string_view merge_id) const {
    return absl::StrCat(prefix_, "tl.m:", merge_id);
  }
  std::string merge_staging_dedup(absl::string_view merge_id) const {
    return absl::StrCat(prefix_, "dd.m:", merge_id);
  }
  std::string merge_staging_remap(absl::string_view merge_id) const {
    return absl::StrCat(prefix_, "rm.m:", merge_id);
  }
  std::string merge_staging_engagement(absl::string_view merge_id) const {
    return absl::StrCat(prefix_, "eg.m:", merge_id);
  }
  std::string merge_history() const { return prefix_ + "mh"; }
  std::string remap() const { return prefix_ + "rm"; }
  std::string conversation_records() const { return prefix_ + "cs"; }
  std::string cases() const { return prefix_ + "ca"; }
  std::string facts() const { return prefix_ + "fa"; }
  std::string contacts() const { return prefix_ + "ct"; }
  std::string contact_channels() const { return prefix_ + "cc"; }
  std::string signals() const { return prefix_ + "sg"; }
  // stream: the timeline being rebuilt by a redaction (renamed over timeline(); libs/privacy)
  std::string timeline_rebuild() const { return prefix_ + "tl.rw"; }
  // hash: the profile as it was before an erase made profile() a tombstone, kept only until
  // the erase's last step (libs/privacy)
  std::string erased_profile() const { return prefix_ + "p.er"; }
  // hash: a redaction of this customer's timeline under way (its record, on the customer whose
  // timeline holds the event) and its copy's progress (libs/privacy)
  std::string redaction() const { return prefix_ + "rd"; }
  // stream: effects of this customer's writes on tenant-wide keys (alerts, journey counters,
  // activity), written with the write and applied in their own slots later (libs/outbox)
  std::string outbox() const { return prefix_ + "ob"; }

 private:
  std::string prefix_;  // "os:{<tenant>:c:<customer>}:"
};

// Tenant-wide aggregates (alerts, journey, audit log, activity) are spread over kTenantBuckets
// buckets per tenant, each with its own hash tag, so one large tenant's traffic spreads over a
// cluster's primaries instead of pinning one. Changing the number needs a data migration.
inline constexpr int kTenantBuckets = 16;
// The bucket of a customer's effects: stable across builds and machines.
int TenantBucket(absl::string_view customer_id);

// One bucket of a tenant's alerts and journey (stage names are validated: [a-z0-9_-]).
class TenantKeys {
 public:
  // 0 <= bucket < kTenantBuckets.
  TenantKeys(absl::string_view tenant, int bucket);
  // The layout before buckets (one hash tag per area); read only to upgrade data an earlier
  // version wrote.
  explicit TenantKeys(absl::string_view tenant);
  std::string alert_log() const { return alerts_ + "log"; }    // stream: one entry per alert
  std::string alert_ids() const { return alerts_ + "ids"; }    // hash: alert id -> stream id
  std::string alert_open() const { return alerts_ + "open"; }  // zset: unacknowledged ids
  std::string alert_acks() const { return alerts_ + "ack"; }   // hash: alert id -> ack JSON
  std::string alert_channel() const { return alerts_ + "n"; }  // pub/sub: new alerts
  // stream: the alert log being rebuilt without an erased customer's alerts (libs/privacy)
  std::string alert_log_rebuild() const { return alerts_ + "log.rw"; }
  // string: "a\nb\nc", the stages in journey order: configuration, one key per tenant, kept
  // in the layout without buckets (TenantKeys(tenant).journey_stages())
  std::string journey_stages() const { return journey_ + "stages"; }
  std::string journey_counters() const { return journey_ + "n"; }  // hash: "<stage>:<what>"
  // zset, every score 0: one member per open case in a stage, "<stage>|<entered ms, 15
  // digits>|<customer>|<case>", so a stage's cases are one lex range ordered by entry
  // (libs/engagement/lua/journey.lua)
  std::string journey_open() const { return journey_ + "open"; }
  // hash: per stage a ring of its latest 1000 completed stays, "<stage>:<i>" -> ms, and
  // "<stage>:n" -> stays recorded so far (libs/engagement/lua/journey.lua)
  std::string journey_stays() const { return journey_ + "stays"; }
  // "os:{acme:j}:": the prefix of the layout before journey_open / journey_stays, "open:<stage>"
  // (zset) and "dur:<stage>" (list); read only to upgrade data an earlier version wrote.
  const std::string& journey_prefix() const { return journey_; }
  // hash: customer id -> the last of its outbox entries applied to this bucket's journey keys,
  // and zset: customer id -> when (ms), to forget marks after libs/outbox's kAppliedKeptFor.
  // A bucket's journey entries are those of the customers in it (TenantBucket of the customer
  // an entry concerns), so one outbox's batch may apply to several buckets, each once.
  std::string journey_applied() const { return journey_ + "ob"; }
  std::string journey_applied_at() const { return journey_ + "ob.t"; }
  // stream: the audit log, one entry per call (libs/audit)
  std::string audit_log() const { return audit_ + "log"; }
  // zset: customer id -> latest activity ms, to the minute (retention: inactive customers
  // expire; libs/timeline/lua/effects.lua writes it at most once a minute per customer). In
  // the bucket of the customer (TenantBucket); the Sweeper walks every bucket.
  std::string activity() const { return retention_ + "active"; }

 private:
  std::string alerts_;     // "os:{<tenant>:a}:"
  std::string journey_;    // "os:{<tenant>:j}:"
  std::string audit_;      // "os:{<tenant>:au}:"
  std::string retention_;  // "os:{<tenant>:r}:"
};

// Promises by due time across tenants, "<tenant>|<customer>|<case>" -> promised_by ms, spread
// over kDueBuckets keys by "<tenant>|<customer>" (DueBucket), so no one node holds them all;
// the overdue-promise scan reads every bucket.
inline constexpr int kDueBuckets = 16;
int DueBucket(absl::string_view tenant, absl::string_view customer_id);
std::string DuePromisesKey(int bucket);  // 0 <= bucket < kDueBuckets
// Beside each bucket (libs/outbox): hash "<tenant>|<customer>" -> the sequence number of the
// last of that outbox's entries applied to the bucket, and zset "<tenant>|<customer>" -> when
// (ms).
std::string DuePromisesAppliedKey(int bucket);
std::string DuePromisesAppliedAtKey(int bucket);
// The index and its marks before buckets; read only to upgrade what an earlier version wrote.
std::string DuePromisesKey();
std::string DuePromisesAppliedKey();
std::string DuePromisesAppliedAtKey();

// The tenants whose activity index (TenantKeys::activity) may hold customers: set of tenant
// ids, added to by the first activity a process applies for a tenant (libs/outbox) and read by
// the retention Sweeper, which finds tenants without SCAN (SCAN sees one node of a cluster).
std::string TenantRegistryKey();
// Written once the unbucketed journey, activity and due-promise keys of an earlier version
// were moved into buckets on a single Redis (libs/engagement/journey_upgrade.h).
std::string BucketUpgradeKey();

// The record of one merge (merge ids are validated like customer ids).
std::string MergeKey(absl::string_view tenant, absl::string_view merge_id);
// The set of merges with steps left, across tenants.
std::string PendingMergesKey();
// The erasures with steps left, across tenants (libs/privacy): hash "<tenant>/<customer id>" ->
// the erase's progress record.
std::string PendingErasuresKey();

// The redactions with steps left, across tenants (libs/privacy): hash "<tenant>/<customer id>"
// -> ms of its latest step.
std::string PendingRedactionsKey();
// The redactions' sequence (a counter): a redaction's token, so later ones sort after.
std::string RedactionSequenceKey();

// Customers whose outbox (CustomerKeys::outbox) may hold effects not applied yet, spread over
// kOutboxBuckets keys so no one node holds them all: zset "<tenant>|<customer>" -> times
// marked (libs/outbox).
inline constexpr int kOutboxBuckets = 16;
std::string PendingOutboxKey(absl::string_view tenant, absl::string_view customer_id);
std::string PendingOutboxKey(int bucket);  // 0 <= bucket < kOutboxBuckets

// The index key of one normalized identifier.
std::string IdentifierKey(absl::string_view tenant, v1::IdentifierType type,
                          absl::string_view normalized_value);

// The short stable name of a type used in keys and in the identifiers hash ("phone", "email",
// ...); empty for UNSPECIFIED or unknown values.
absl::string_view IdentifierTypeName(v1::IdentifierType type);
// The reverse of IdentifierTypeName; UNSPECIFIED for an unknown name.
v1::IdentifierType IdentifierTypeFromName(absl::string_view name);

// Percent-encodes every byte outside [A-Za-z0-9._@+-].
std::string EncodeKeyPart(absl::string_view raw);

}  // namespace onestory::keys
