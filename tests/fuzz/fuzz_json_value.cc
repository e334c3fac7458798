// ParseJsonObject (libs/common/json_value.h) from arbitrary bytes, against protobuf's own JSON
// parser: it never crashes, fails only with INVALID_ARGUMENT, and whatever it accepts (valid
// UTF-8: it keeps string bytes as given, where protobuf checks them) protobuf accepts too, as
// the Struct ToStruct makes of it; Find finds every member listed, at every depth.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "libs/common/json_value.h"
#include "libs/common/validation.h"
#include "tests/fuzz/fuzz_check.h"

// Find finds each member an object lists (keys are unique), at every depth.
static void CheckFind(const onestory::JsonValue& v) {
  for (const onestory::JsonValue::Member& m : v.members()) {
    FUZZ_CHECK(v.Find(m.key) == &m.value);
    CheckFind(m.value);
  }
  for (const onestory::JsonValue& item : v.items()) CheckFind(item);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<onestory::JsonValue> ours = onestory::ParseJsonObject(text);
  if (!ours.ok()) {
    FUZZ_CHECK(ours.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(ours->is_object());
  CheckFind(*ours);
  if (!onestory::IsValidUtf8(text)) return 0;
  google::protobuf::Struct theirs;
  FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(text, &theirs).ok());
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(onestory::ToStruct(*ours), theirs));
  return 0;
}
