#include "libs/audit/audit_upgrade.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/audit_upgrade.h"
#include "libs/lua/outbox_delete.h"
#include "libs/redis/scan.h"

namespace onestory::audit {
namespace {

using redis::Reply;

constexpr int kChunk = 100;

template <typename Call>
absl::StatusOr<Reply> FcallSync(redis::Client* client, const Call& call, absl::Duration timeout) {
  absl::Notification done;
  absl::StatusOr<Reply> out;
  client->Fcall(call, absl::Now() + timeout, [&](absl::StatusOr<Reply> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

absl::StatusOr<int> MoveTenant(redis::Client* client, const std::string& tenant,
                               absl::Duration timeout) {
  const std::string old = keys::TenantKeys(tenant).audit_log();
  int moved = 0;
  while (true) {
    absl::StatusOr<Reply> page =
        client->CommandSync({"XRANGE", old, "-", "+", "COUNT", absl::StrCat(kChunk)}, timeout);
    if (!page.ok()) return page.status();
    if (page->elements.empty()) break;
    std::map<int, lua::AuditUpgrade> by_bucket;
    // XDEL, and DEL once empty (a stream does not go by itself): outbox_delete does just that.
    lua::OutboxDelete moved_out;
    moved_out.outbox = old;
    for (const Reply& e : page->elements) {
      if (!e.is_array() || e.elements.size() != 2) continue;
      const std::string& sid = e.elements[0].str;
      std::string customer, entry;
      const auto& f = e.elements[1].elements;
      for (size_t i = 0; i + 1 < f.size(); i += 2) {
        if (f[i].str == "c") customer = f[i + 1].str;
        if (f[i].str == "e") entry = f[i + 1].str;
      }
      const int bucket = keys::TenantBucket(customer.empty() ? sid : customer);
      lua::AuditUpgrade& call = by_bucket[bucket];
      call.log = keys::TenantKeys(tenant, bucket).audit_log();
      call.entries.insert(call.entries.end(), {sid, customer, entry});
      moved_out.ids.push_back(sid);
    }
    if (moved_out.ids.empty()) break;  // nothing this version can read
    for (const auto& [bucket, call] : by_bucket) {
      absl::StatusOr<Reply> r = FcallSync(client, call, timeout);
      if (!r.ok()) return r.status();
      moved += static_cast<int>(r->integer);
    }
    absl::StatusOr<Reply> r = FcallSync(client, moved_out, timeout);
    if (!r.ok()) return r.status();
  }
  return moved;
}

}  // namespace

absl::StatusOr<int> UpgradeAuditKeys(redis::Client* client, absl::Duration timeout) {
  if (client->cluster()) return 0;
  // Set by a start that found nothing left: the SCAN below walks every key.
  const std::string done_key = absl::StrCat(keys::BucketUpgradeKey(), ".audit");
  absl::StatusOr<Reply> done = client->CommandSync({"EXISTS", done_key}, timeout);
  if (!done.ok()) return done.status();
  if (done->integer == 1) return 0;
  std::set<std::string> tenants;
  absl::Status scanned =
      redis::ScanSync(client, "os:{*:au}:log", timeout, [&](const std::string& key) {
        const size_t close = key.find("}:");
        std::string tenant =
            close == std::string::npos || close < 7 ? "" : key.substr(4, close - 7);
        if (!ValidateTenant(tenant).ok() || keys::TenantKeys(tenant).audit_log() != key) {
          Log(LogLevel::kWarning, "audit.upgrade_skipped", {{"key", key}});
          return absl::OkStatus();
        }
        tenants.insert(tenant);
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
    Log(LogLevel::kInfo, "audit.upgraded", {{"tenant", tenant}, {"entries", absl::StrCat(*n)}});
  }
  return moved;
}

}  // namespace onestory::audit
