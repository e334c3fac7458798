#include "libs/redis/scan.h"

#include "absl/strings/str_cat.h"

namespace onestory::redis {

absl::Status ScanSync(Client* client, const std::string& pattern, absl::Duration timeout,
                      absl::FunctionRef<absl::Status(const std::string& key)> each) {
  if (client->cluster()) {
    return absl::FailedPreconditionError(
        absl::StrCat("SCAN of ", pattern, " on a Redis Cluster would see one node only"));
  }
  std::string cursor = "0";
  do {
    absl::StatusOr<Reply> page =
        client->CommandSync({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, timeout);
    if (!page.ok()) return page.status();
    if (!page->is_array() || page->elements.size() != 2) {
      return absl::InternalError("unexpected SCAN reply");
    }
    cursor = page->elements[0].str;
    for (const Reply& k : page->elements[1].elements) {
      if (absl::Status st = each(k.str); !st.ok()) return st;
    }
  } while (cursor != "0");
  return absl::OkStatus();
}

}  // namespace onestory::redis
