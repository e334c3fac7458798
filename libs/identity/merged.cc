#include "libs/identity/merged.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace onestory::identity {

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
