#include "libs/merge/merge_run.h"

#include <utility>

#include "absl/strings/str_split.h"

namespace onestory::merge {

using redis::Reply;

void ReadJourneyStages(redis::Client* client, const std::string& tenant, absl::Time deadline,
                       Callback<std::vector<std::string>> done) {
  client->Command({"GET", keys::TenantKeys(tenant).journey_stages()}, deadline,
                  [done = std::move(done)](absl::StatusOr<Reply> r) mutable {
                    if (!r.ok()) return done(r.status());
                    std::vector<std::string> stages;
                    if (r->is_string()) stages = absl::StrSplit(r->str, '\n', absl::SkipEmpty());
                    done(std::move(stages));
                  });
}

lua::MergeMoveIndex MoveIndexCall(const std::string& tenant, const std::string& field,
                                  const std::string& new_owner, const std::string& old_owner) {
  size_t colon = field.find(':');
  lua::MergeMoveIndex call;
  call.index = keys::IdentifierKey(tenant, keys::IdentifierTypeFromName(field.substr(0, colon)),
                                   field.substr(colon + 1));
  call.new_owner = new_owner;
  call.old_owner = old_owner;
  return call;
}

lua::MergeReleaseNotify ReleaseNotifyCall(const keys::CustomerKeys& customer,
                                          const std::string& merge_id, const std::string& message) {
  lua::MergeReleaseNotify call;
  call.profile = customer.profile();
  call.lock = merge_id;
  call.notify_channel = customer.channel();
  call.message = message;
  return call;
}

}  // namespace onestory::merge
