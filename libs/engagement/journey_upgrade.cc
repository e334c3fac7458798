#include "libs/engagement/journey_upgrade.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/common/log.h"
#include "libs/common/validation.h"
#include "libs/engagement/records.h"
#include "libs/keys/key_schema.h"
#include "libs/lua/engagement_journey_upgrade.h"

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

absl::StatusOr<redis::Reply> FcallSync(redis::Client* client,
                                       const lua::EngagementJourneyUpgrade& call,
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

}  // namespace

absl::StatusOr<int> UpgradeJourneyKeys(redis::Client* client, absl::Duration timeout) {
  int folded = 0;
  std::string cursor = "0";
  do {
    absl::StatusOr<redis::Reply> page =
        client->CommandSync({"SCAN", cursor, "MATCH", "os:{*:j}:*", "COUNT", "1000"}, timeout);
    if (!page.ok()) return page.status();
    if (!page->is_array() || page->elements.size() != 2) {
      return absl::InternalError("unexpected SCAN reply");
    }
    cursor = page->elements[0].str;
    for (const redis::Reply& k : page->elements[1].elements) {
      const std::string& key = k.str;
      std::optional<OldKey> old = ParseOldKey(key);
      if (!old) {
        if (absl::StrContains(key, "}:open:") || absl::StrContains(key, "}:dur:")) {
          Log(LogLevel::kWarning, "journey.upgrade_skipped", {{"key", key}});
        }
        continue;
      }
      keys::TenantKeys tk(old->tenant);
      lua::EngagementJourneyUpgrade call;
      call.old = key;
      call.journey_open = tk.journey_open();
      call.journey_stays = tk.journey_stays();
      call.stage = old->stage;
      call.kind = old->kind;
      absl::StatusOr<redis::Reply> r = FcallSync(client, call, timeout);
      if (!r.ok()) return r.status();
      ++folded;
      Log(LogLevel::kInfo, "journey.upgraded",
          {{"key", key},
           {"into", old->kind == "open" ? call.journey_open : call.journey_stays},
           {"entries", absl::StrCat(r->integer)}});
    }
  } while (cursor != "0");
  return folded;
}

}  // namespace onestory::engagement
