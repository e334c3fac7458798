#include "libs/engagement/journey_upgrade.h"

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/common/time_util.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_bucket_upgrade.h"
#include "libs/lua/engagement_journey_upgrade.h"
#include "libs/redis/scan.h"

namespace onestory::engagement {
namespace {

struct OldKey {
  std::string tenant;
  std::string kind;  // "open" or "dur"
  std::string stage;
};

// "os:{<tenant>:j}:open:<stage>" or "...:dur:<stage>", as keys::TenantKeys spelled them.
std::optional<OldKey> ParseOldKey(const std::string& key) {
  size_t close = key.find("}:");
  if (!absl::StartsWith(key, "os:{") || close == std::string::npos || close < 6 ||
      key.compare(close - 2, 2, ":j") != 0) {
    return std::nullopt;
  }
  OldKey old;
  old.tenant = key.substr(4, close - 6);
  std::string rest = key.substr(close + 2);
  for (const char* kind : {"open", "dur"}) {
    std::string prefix = absl::StrCat(kind, ":");
    if (absl::StartsWith(rest, prefix)) {
      old.kind = kind;
      old.stage = rest.substr(prefix.size());
    }
  }
  if (old.kind.empty() || !ValidateTenant(old.tenant).ok() ||
      !ValidateStage("stage", old.stage).ok() ||
      absl::StrCat(keys::TenantKeys(old.tenant).journey_prefix(), old.kind, ":", old.stage) !=
          key) {
    return std::nullopt;
  }
  return old;
}

template <typename Call>
absl::StatusOr<redis::Reply> FcallSync(redis::Client* client, const Call& call,
                                       absl::Duration timeout) {
  absl::Notification done;
  absl::StatusOr<redis::Reply> out;
  client->Fcall(call, absl::Now() + timeout, [&](absl::StatusOr<redis::Reply> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

// The tenant of a key of the layout before buckets, "os:{<tenant>:<area>}:<name>", or "".
std::string TenantOf(absl::string_view key, absl::string_view area) {
  if (!absl::ConsumePrefix(&key, "os:{")) return "";
  size_t close = key.find("}:");
  if (close == absl::string_view::npos) return "";
  absl::string_view tag = key.substr(0, close);
  if (!absl::ConsumeSuffix(&tag, absl::StrCat(":", area)) || !ValidateTenant(tag).ok()) return "";
  return std::string(tag);
}

// Moves one old key into its buckets (`targets`, bucket 0 first), kUpgradeChunk entries per
// engagement_bucket_upgrade call; `bucket` gives an entry's bucket (-1: it does not parse, it
// stays). A zset is read from its head; a hash with HSCAN.
absl::Status Move(redis::Client* client, const std::string& old, bool zset,
                  std::vector<std::string> targets, const std::string& kind,
                  const std::function<int(absl::string_view)>& bucket, absl::Duration timeout) {
  int64_t skipped = 0;  // zset: entries at the head that do not parse
  std::string cursor = "0";
  int64_t moved = 0;
  while (true) {
    absl::StatusOr<redis::Reply> page =
        zset ? client->CommandSync({"ZRANGE", old, absl::StrCat(skipped),
                                    absl::StrCat(skipped + kUpgradeChunk - 1), "WITHSCORES"},
                                   timeout)
             : client->CommandSync({"HSCAN", old, cursor, "COUNT", absl::StrCat(kUpgradeChunk)},
                                   timeout);
    if (!page.ok()) return page.status();
    const std::vector<redis::Reply>* items = &page->elements;
    if (!zset) {
      if (page->elements.size() != 2) return absl::InternalError("unexpected HSCAN reply");
      cursor = page->elements[0].str;
      items = &page->elements[1].elements;
    }
    lua::EngagementBucketUpgrade call;
    call.old = old;
    call.targets = targets;
    call.kind = kind;
    for (size_t i = 0; i + 1 < items->size(); i += 2) {
      const std::string& m = (*items)[i].str;
      const int b = bucket(m);
      if (b < 0) {
        Log(LogLevel::kWarning, "journey.upgrade_skipped", {{"key", old}, {"entry", m}});
        ++skipped;
        continue;
      }
      call.entries.insert(call.entries.end(), {absl::StrCat(b), m, (*items)[i + 1].str});
    }
    if (!call.entries.empty()) {
      absl::StatusOr<redis::Reply> r = FcallSync(client, call, timeout);
      if (!r.ok()) return r.status();
      moved += r->integer;
      // Entries changed since read (a write of a newer version meanwhile) stay; read past them.
      if (zset) skipped += static_cast<int64_t>(call.entries.size() / 3) - r->integer;
    }
    if (zset ? items->size() < 2 * static_cast<size_t>(kUpgradeChunk) : cursor == "0") break;
  }
  if (moved > 0) {
    Log(LogLevel::kInfo, "journey.upgraded", {{"key", old}, {"entries", absl::StrCat(moved)}});
  }
  return absl::OkStatus();
}

// The bucket keys of one kind, bucket 0 first.
std::vector<std::string> Buckets(int n, const std::function<std::string(int)>& key) {
  std::vector<std::string> out;
  for (int b = 0; b < n; ++b) out.push_back(key(b));
  return out;
}

// The customer an open-case member names ("<stage>|<entered>|<customer>|<case>"): its bucket.
int OpenBucket(absl::string_view member) {
  std::vector<absl::string_view> parts = absl::StrSplit(member, absl::MaxSplits('|', 3));
  if (parts.size() != 4 || !ValidateCustomerId("customer", parts[2]).ok()) return -1;
  return keys::TenantBucket(parts[2]);
}

// "<tenant>|<customer>" or "<tenant>|<customer>|<case>": its due bucket.
int DueBucket(absl::string_view member) {
  std::vector<absl::string_view> parts = absl::StrSplit(member, absl::MaxSplits('|', 2));
  if (parts.size() < 2 || !ValidateTenant(parts[0]).ok() ||
      !ValidateCustomerId("customer", parts[1]).ok()) {
    return -1;
  }
  return keys::DueBucket(parts[0], parts[1]);
}

int CustomerBucket(absl::string_view id) {
  return ValidateCustomerId("customer", id).ok() ? keys::TenantBucket(id) : -1;
}

absl::Status MoveJourney(redis::Client* client, const std::string& tenant, absl::Duration timeout) {
  const keys::TenantKeys old(tenant);
  auto bucket = [&](auto key) {
    return Buckets(keys::kTenantBuckets,
                   [&](int b) { return (keys::TenantKeys(tenant, b).*key)(); });
  };
  RETURN_IF_ERROR(Move(client, old.journey_open(), true, bucket(&keys::TenantKeys::journey_open),
                       "zadd", OpenBucket, timeout));
  RETURN_IF_ERROR(Move(
      client, old.journey_counters(), false, bucket(&keys::TenantKeys::journey_counters), "hincr",
      [](absl::string_view) { return 0; }, timeout));
  RETURN_IF_ERROR(Move(client, old.journey_applied(), false,
                       bucket(&keys::TenantKeys::journey_applied), "hmax", CustomerBucket,
                       timeout));
  RETURN_IF_ERROR(Move(client, old.journey_applied_at(), true,
                       bucket(&keys::TenantKeys::journey_applied_at), "zadd_gt", CustomerBucket,
                       timeout));
  // The stays: one 'ring' entry per stage, named by its "<stage>:n" field.
  std::string cursor = "0";
  do {
    absl::StatusOr<redis::Reply> page = client->CommandSync(
        {"HSCAN", old.journey_stays(), cursor, "MATCH", "*:n", "COUNT", "1000"}, timeout);
    if (!page.ok()) return page.status();
    if (page->elements.size() != 2) return absl::InternalError("unexpected HSCAN reply");
    cursor = page->elements[0].str;
    lua::EngagementBucketUpgrade call;
    call.old = old.journey_stays();
    call.targets = bucket(&keys::TenantKeys::journey_stays);
    call.kind = "ring";
    const auto& items = page->elements[1].elements;
    for (size_t i = 0; i + 1 < items.size(); i += 2) {
      absl::string_view stage = items[i].str;
      if (!absl::ConsumeSuffix(&stage, ":n") || !ValidateStage("stage", stage).ok()) continue;
      call.entries.insert(call.entries.end(), {"0", std::string(stage), ""});
    }
    if (!call.entries.empty()) {
      absl::StatusOr<redis::Reply> r = FcallSync(client, call, timeout);
      if (!r.ok()) return r.status();
    }
  } while (cursor != "0");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> UpgradeJourneyKeys(redis::Client* client, absl::Duration timeout) {
  if (client->cluster()) return 0;
  absl::StatusOr<redis::Reply> ran =
      client->CommandSync({"EXISTS", keys::BucketUpgradeKey()}, timeout);
  if (!ran.ok()) return ran.status();
  if (ran->integer == 1) return 0;
  int upgraded = 0;
  std::set<std::string> journeys, activities;
  RETURN_IF_ERROR(redis::ScanSync(client, "os:{*}:*", timeout, [&](const std::string& key) {
    if (std::string t = TenantOf(key, "r"); !t.empty()) {
      if (key == keys::TenantKeys(t).activity()) activities.insert(t);
      return absl::OkStatus();
    }
    std::string tenant = TenantOf(key, "j");
    // The stage list stays where it is (one key, read as before).
    if (tenant.empty() || key == keys::TenantKeys(tenant).journey_stages()) return absl::OkStatus();
    std::optional<OldKey> old = ParseOldKey(key);
    if (!old) {
      if (absl::StrContains(key, "}:open:") || absl::StrContains(key, "}:dur:")) {
        Log(LogLevel::kWarning, "journey.upgrade_skipped", {{"key", key}});
      } else {
        journeys.insert(tenant);
      }
      return absl::OkStatus();
    }
    // The per-stage layout: folded into the journey before buckets, moved with it below.
    keys::TenantKeys tk(old->tenant);
    lua::EngagementJourneyUpgrade call;
    call.old = key;
    call.journey_open = tk.journey_open();
    call.journey_stays = tk.journey_stays();
    call.stage = old->stage;
    call.kind = old->kind;
    call.max = kUpgradeChunk;
    // One chunk per call until the old key is gone (a start that stopped midway goes on here).
    int64_t folded = 0;
    for (bool more = true; more;) {
      absl::StatusOr<redis::Reply> r = FcallSync(client, call, timeout);
      if (!r.ok()) return r.status();
      if (!r->is_array() || r->elements.size() != 2) {
        return absl::InternalError("unexpected reply from engagement_journey_upgrade");
      }
      folded += r->elements[0].integer;
      more = r->elements[1].integer == 1;
    }
    ++upgraded;
    journeys.insert(old->tenant);
    Log(LogLevel::kInfo, "journey.upgraded",
        {{"key", key},
         {"into", old->kind == "open" ? call.journey_open : call.journey_stays},
         {"entries", absl::StrCat(folded)}});
    return absl::OkStatus();
  }));

  for (const std::string& tenant : journeys) {
    RETURN_IF_ERROR(MoveJourney(client, tenant, timeout));
    ++upgraded;
  }
  for (const std::string& tenant : activities) {
    absl::StatusOr<redis::Reply> r =
        client->CommandSync({"SADD", keys::TenantRegistryKey(), tenant}, timeout);
    if (!r.ok()) return r.status();
    RETURN_IF_ERROR(Move(client, keys::TenantKeys(tenant).activity(), true,
                         Buckets(keys::kTenantBuckets,
                                 [&](int b) { return keys::TenantKeys(tenant, b).activity(); }),
                         "zadd_gt", CustomerBucket, timeout));
    ++upgraded;
  }
  absl::StatusOr<redis::Reply> due =
      client->CommandSync({"EXISTS", keys::DuePromisesKey(), keys::DuePromisesAppliedKey(),
                           keys::DuePromisesAppliedAtKey()},
                          timeout);
  if (!due.ok()) return due.status();
  if (due->integer > 0) {
    RETURN_IF_ERROR(Move(client, keys::DuePromisesKey(), true,
                         Buckets(keys::kDueBuckets, [](int b) { return keys::DuePromisesKey(b); }),
                         "zadd_nx", DueBucket, timeout));
    RETURN_IF_ERROR(
        Move(client, keys::DuePromisesAppliedKey(), false,
             Buckets(keys::kDueBuckets, [](int b) { return keys::DuePromisesAppliedKey(b); }),
             "hmax", DueBucket, timeout));
    RETURN_IF_ERROR(
        Move(client, keys::DuePromisesAppliedAtKey(), true,
             Buckets(keys::kDueBuckets, [](int b) { return keys::DuePromisesAppliedAtKey(b); }),
             "zadd_gt", DueBucket, timeout));
    ++upgraded;
  }
  absl::StatusOr<redis::Reply> done =
      client->CommandSync({"SET", keys::BucketUpgradeKey(), absl::StrCat(NowMillis())}, timeout);
  if (!done.ok()) return done.status();
  return upgraded;
}

}  // namespace onestory::engagement
