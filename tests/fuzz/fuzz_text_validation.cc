// The field checks of libs/common/validation.h on arbitrary bytes, against a plain model.
//
// The model reads UTF-8 by the table of well-formed byte sequences (Unicode 15, table 3-7),
// independently of IsValidUtf8, and states each check's rule as its header does; the check and
// the model must agree on every input, and every refusal is INVALID_ARGUMENT naming the field.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "libs/common/validation.h"
#include "tests/fuzz/fuzz_check.h"

namespace onestory {
namespace {

// The code points of s, or false when s is not well-formed UTF-8.
bool DecodeUtf8(absl::string_view s, std::vector<uint32_t>* out) {
  size_t i = 0;
  while (i < s.size()) {
    uint8_t b = static_cast<uint8_t>(s[i]);
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // the range of the second byte
    uint32_t cp;
    if (b <= 0x7F) {
      out->push_back(b);
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2, cp = b & 0x1F;
    } else if (b == 0xE0) {
      len = 3, cp = b & 0x0F, lo = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      len = 3, cp = b & 0x0F;
    } else if (b == 0xED) {
      len = 3, cp = b & 0x0F, hi = 0x9F;
    } else if (b == 0xF0) {
      len = 4, cp = b & 0x07, lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      len = 4, cp = b & 0x07;
    } else if (b == 0xF4) {
      len = 4, cp = b & 0x07, hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      uint8_t c = static_cast<uint8_t>(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    out->push_back(cp);
    i += len;
  }
  return true;
}

bool TextModel(absl::string_view s, size_t max_bytes, bool allow_newlines) {
  std::vector<uint32_t> cps;
  if (s.size() > max_bytes || !DecodeUtf8(s, &cps)) return false;
  for (uint32_t cp : cps) {
    bool newline = cp == '\n' || cp == '\r' || cp == '\t';
    if (cp < 0x20 && !(allow_newlines && newline)) return false;
    if (cp >= 0x7F && cp <= 0x9F) return false;  // DEL and the C1 controls
  }
  return true;
}

bool TokenModel(absl::string_view s, size_t max_bytes, bool allow_empty) {
  if (s.empty()) return allow_empty;
  if (s.size() > max_bytes) return false;
  for (char c : s) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

bool IdModel(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The check agrees with the model; a refusal is INVALID_ARGUMENT and names the field first.
void Agree(const absl::Status& st, bool model, absl::string_view field) {
  FUZZ_CHECK(st.ok() == model);
  if (!st.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(st));
    FUZZ_CHECK(absl::StartsWith(st.message(), field));
  }
}

}  // namespace
}  // namespace onestory

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace onestory;
  FuzzedDataProvider in(data, size);
  size_t max_bytes = in.ConsumeIntegralInRange<size_t>(0, 1024);
  bool flag = in.ConsumeBool();
  std::string s = in.ConsumeRemainingBytesAsString();

  std::vector<uint32_t> ignored;
  FUZZ_CHECK(IsValidUtf8(s) == DecodeUtf8(s, &ignored));
  Agree(ValidateText("f.text", s, max_bytes, flag), TextModel(s, max_bytes, flag), "f.text");
  Agree(ValidateToken("f.token", s, max_bytes, flag), TokenModel(s, max_bytes, flag), "f.token");
  Agree(ValidateTenant(s), IdModel(s), "tenant");
  Agree(ValidateCustomerId("f.customer_id", s), IdModel(s), "f.customer_id");
  return 0;
}
