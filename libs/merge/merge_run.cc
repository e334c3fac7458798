#include "libs/merge/merge_run.h"

#include <utility>


namespace onestory::merge {

using redis::Reply;

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
