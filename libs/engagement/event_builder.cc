#include "libs/engagement/event_builder.h"

#include "absl/strings/ascii.h"
#include "libs/timeline/cursor.h"

namespace onestory::engagement {

std::string ActorName(const v1::Actor& actor) {
  std::string type = absl::AsciiStrToLower(v1::Actor::Type_Name(actor.type()).substr(5));
  return actor.id().empty() ? type : absl::StrCat(type, ":", actor.id());
}

absl::StatusOr<v1::Event> StoredEvent(const std::string& customer_id, const std::string& sid,
                                      const std::string& blob, const v1::Event* built) {
  v1::Event e;
  if (built != nullptr) {
    e = *built;
  } else if (!e.ParseFromString(blob)) {
    return absl::InternalError(absl::StrCat("undecodable event at ", sid));
  }
  e.set_customer_id(customer_id);
  e.set_cursor(timeline::EncodeCursor(customer_id, sid));
  *e.mutable_appended_at() = FromMillis(timeline::StreamIdMillis(sid));
  return e;
}

}  // namespace onestory::engagement
