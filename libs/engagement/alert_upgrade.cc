#include "libs/engagement/alert_upgrade.h"

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/engagement/alert_store.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_alert_upgrade.h"
#include "libs/lua/outbox_delete.h"
#include "libs/redis/scan.h"

namespace onestory::engagement {
namespace {

using redis::Reply;

constexpr int kChunk = 100;

// The tenant of a key of the earlier layout, "os:{<tenant>:a}:<...>".
std::optional<std::string> TenantOfOldKey(const std::string& key) {
  size_t close = key.find("}:");
  if (!absl::StartsWith(key, "os:{") || close == std::string::npos || close < 6 ||
      key.compare(close - 2, 2, ":a") != 0) {
    return std::nullopt;
  }
  std::string tenant = key.substr(4, close - 6);
  if (!ValidateTenant(tenant).ok()) return std::nullopt;
  return tenant;
}

// One alert to move: its id, its stream id, and its old log entry's fields (none when only the
// id is left).
struct OldAlert {
  std::string id;
  std::string stream_id;
  std::vector<std::string> fields;
};

// Moves a chunk of one tenant's alerts into their buckets, then deletes them from the old keys.
// Returns how many were moved (not in their bucket already).
absl::StatusOr<int> MoveChunk(redis::Client* client, const std::string& tenant,
                              const std::vector<OldAlert>& chunk, absl::Duration timeout) {
  const keys::TenantKeys old(tenant);
  std::vector<std::string> ids;
  for (const OldAlert& a : chunk) ids.push_back(a.id);
  std::vector<std::string> zmscore = {"ZMSCORE", old.alert_open()};
  std::vector<std::string> hmget = {"HMGET", old.alert_acks()};
  zmscore.insert(zmscore.end(), ids.begin(), ids.end());
  hmget.insert(hmget.end(), ids.begin(), ids.end());
  absl::StatusOr<Reply> open = client->CommandSync(zmscore, timeout);
  if (!open.ok()) return open.status();
  absl::StatusOr<Reply> acks = client->CommandSync(hmget, timeout);
  if (!acks.ok()) return acks.status();
  if (open->elements.size() != chunk.size() || acks->elements.size() != chunk.size()) {
    return absl::InternalError("unexpected reply reading the alerts to upgrade");
  }

  absl::Mutex mu;
  absl::Status failed;
  int moved = 0;
  std::vector<std::string> gone;  // ids moved or already in their bucket
  std::vector<std::string> gone_sids;
  absl::BlockingCounter pending(static_cast<int>(chunk.size()));
  for (size_t i = 0; i < chunk.size(); ++i) {
    const OldAlert& a = chunk[i];
    absl::StatusOr<int> bucket = AlertStore::BucketOf(a.id);
    if (!bucket.ok()) {
      Log(LogLevel::kWarning, "alerts.upgrade_skipped", {{"tenant", tenant}, {"alert", a.id}});
      pending.DecrementCount();
      continue;
    }
    const keys::TenantKeys tk(tenant, *bucket);
    lua::EngagementAlertUpgrade call;
    call.alert_log = tk.alert_log();
    call.alert_ids = tk.alert_ids();
    call.alert_open = tk.alert_open();
    call.alert_acks = tk.alert_acks();
    call.alert_id = a.id;
    call.stream_id = a.stream_id;
    call.open = open->elements[i].is_nil() ? "" : open->elements[i].str;
    call.ack = acks->elements[i].is_nil() ? "" : acks->elements[i].str;
    call.fields = a.fields;
    client->Fcall(call, absl::Now() + timeout, [&, i](absl::StatusOr<Reply> r) {
      {
        absl::MutexLock lock(&mu);
        if (!r.ok()) {
          if (failed.ok()) failed = r.status();
        } else {
          moved += static_cast<int>(r->integer);
          gone.push_back(chunk[i].id);
          if (!chunk[i].fields.empty()) gone_sids.push_back(chunk[i].stream_id);
        }
      }
      pending.DecrementCount();
    });
  }
  pending.Wait();
  if (!failed.ok()) return failed;
  if (gone.empty()) return 0;
  // Then out of the old keys (each command idempotent: a rerun deletes nothing twice).
  std::vector<std::vector<std::string>> deletes = {
      {"HDEL", old.alert_ids()}, {"ZREM", old.alert_open()}, {"HDEL", old.alert_acks()}};
  for (auto& d : deletes) d.insert(d.end(), gone.begin(), gone.end());
  for (const auto& d : deletes) {
    absl::StatusOr<Reply> r = client->CommandSync(d, timeout);
    if (!r.ok()) return r.status();
  }
  if (!gone_sids.empty()) {
    // XDEL, and DEL once empty (a stream does not go by itself): outbox_delete does just that.
    lua::OutboxDelete del;
    del.outbox = old.alert_log();
    del.ids = std::move(gone_sids);
    absl::Notification done;
    absl::Status st;
    client->Fcall(del, absl::Now() + timeout, [&](absl::StatusOr<Reply> r) {
      st = r.status();
      done.Notify();
    });
    done.WaitForNotification();
    if (!st.ok()) return st;
  }
  return moved;
}

absl::StatusOr<int> MoveTenant(redis::Client* client, const std::string& tenant,
                               absl::Duration timeout) {
  const keys::TenantKeys old(tenant);
  int moved = 0;
  // The log, oldest first (an entry left alone is passed by).
  std::string start = "-";
  while (true) {
    absl::StatusOr<Reply> page = client->CommandSync(
        {"XRANGE", old.alert_log(), start, "+", "COUNT", absl::StrCat(kChunk)}, timeout);
    if (!page.ok()) return page.status();
    std::vector<OldAlert> chunk;
    for (const Reply& e : page->elements) {
      if (!e.is_array() || e.elements.size() != 2) continue;
      OldAlert a;
      a.stream_id = e.elements[0].str;
      for (const Reply& f : e.elements[1].elements) a.fields.push_back(f.str);
      for (size_t i = 0; i + 1 < a.fields.size(); i += 2) {
        if (a.fields[i] == "id") a.id = a.fields[i + 1];
      }
      start = absl::StrCat("(", a.stream_id);
      if (a.id.empty()) {
        Log(LogLevel::kWarning, "alerts.upgrade_skipped",
            {{"tenant", tenant}, {"entry", a.stream_id}});
        continue;
      }
      chunk.push_back(std::move(a));
    }
    if (!chunk.empty()) {
      absl::StatusOr<int> n = MoveChunk(client, tenant, chunk, timeout);
      if (!n.ok()) return n.status();
      moved += *n;
    }
    if (page->elements.size() < static_cast<size_t>(kChunk)) break;
  }
  // The ids left: alerts trimmed from the log, whose ids still refuse a second raise.
  std::string cursor = "0";
  do {
    absl::StatusOr<Reply> page = client->CommandSync(
        {"HSCAN", old.alert_ids(), cursor, "COUNT", absl::StrCat(kChunk)}, timeout);
    if (!page.ok()) return page.status();
    if (!page->is_array() || page->elements.size() != 2) {
      return absl::InternalError("unexpected HSCAN reply");
    }
    cursor = page->elements[0].str;
    std::vector<OldAlert> chunk;
    const auto& kv = page->elements[1].elements;
    for (size_t i = 0; i + 1 < kv.size(); i += 2) {
      chunk.push_back(OldAlert{kv[i].str, kv[i + 1].str, {}});
    }
    if (!chunk.empty()) {
      absl::StatusOr<int> n = MoveChunk(client, tenant, chunk, timeout);
      if (!n.ok()) return n.status();
      moved += *n;
    }
  } while (cursor != "0");
  return moved;
}

}  // namespace

absl::StatusOr<int> UpgradeAlertKeys(redis::Client* client, absl::Duration timeout) {
  if (client->cluster()) return 0;
  // Set by a start that found nothing left: the SCAN below walks every key.
  const std::string done_key = absl::StrCat(keys::BucketUpgradeKey(), ".alerts");
  absl::StatusOr<Reply> done = client->CommandSync({"EXISTS", done_key}, timeout);
  if (!done.ok()) return done.status();
  if (done->integer == 1) return 0;
  std::set<std::string> tenants;
  absl::Status scanned =
      redis::ScanSync(client, "os:{*:a}:*", timeout, [&](const std::string& key) {
        if (std::optional<std::string> tenant = TenantOfOldKey(key)) {
          tenants.insert(*tenant);
        } else {
          Log(LogLevel::kWarning, "alerts.upgrade_skipped", {{"key", key}});
        }
        return absl::OkStatus();
      });
  if (!scanned.ok()) return scanned;
  if (tenants.empty()) {
    // Checked once more by every start until one finds nothing: instances of the earlier
    // version still running during a rolling upgrade may write the old keys meanwhile.
    absl::StatusOr<Reply> set = client->CommandSync({"SET", done_key, "1"}, timeout);
    if (!set.ok()) return set.status();
    return 0;
  }
  int moved = 0;
  for (const std::string& tenant : tenants) {
    absl::StatusOr<int> n = MoveTenant(client, tenant, timeout);
    if (!n.ok()) return n.status();
    moved += *n;
    Log(LogLevel::kInfo, "alerts.upgraded", {{"tenant", tenant}, {"alerts", absl::StrCat(*n)}});
  }
  return moved;
}

}  // namespace onestory::engagement
