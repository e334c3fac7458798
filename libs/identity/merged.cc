#include "libs/identity/merged.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace onestory::identity {

const char kGuardLua[] = R"lua(
local function os_guard(profile_key, customer, write)
  local g = redis.call('HMGET', profile_key, 'created_at', 'merged_into', 'merge_lock',
                       'merge_id', 'merged_head')
  if not g[1] then
    -- An erased customer keeps a tombstone (erased_at only, libs/privacy): never reused.
    if redis.call('HEXISTS', profile_key, 'erased_at') == 1 then
      return redis.error_reply('OS_NOT_FOUND customer ' .. customer .. ' was erased')
    end
    return redis.error_reply('OS_NOT_FOUND customer ' .. customer .. ' not found')
  end
  if g[2] then
    return redis.error_reply('OS_MOVED moved:' .. g[2] .. ':' .. (g[4] or '') .. ':' ..
                             (g[5] or '0-0') .. ' customer ' .. customer ..
                             ' was merged into ' .. g[2])
  end
  if write and g[3] then
    return redis.error_reply('OS_BUSY customer ' .. customer .. ' is held by merge ' .. g[3] ..
                             '; retry shortly')
  end
  return nil
end
)lua";

std::optional<Moved> MovedTo(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kFailedPrecondition) return std::nullopt;
  absl::string_view msg = status.message();
  if (!absl::StartsWith(msg, "moved:")) return std::nullopt;
  absl::string_view word = msg.substr(0, msg.find(' '));
  std::vector<std::string> parts = absl::StrSplit(word, ':');
  if (parts.size() != 4 || parts[1].empty()) return std::nullopt;
  return Moved{parts[1], parts[2], parts[3]};
}

}  // namespace onestory::identity
