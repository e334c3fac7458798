#include "libs/common/json_struct.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace onestory {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

// As protobuf's JSON parser allows.
constexpr int kMaxDepth = 100;

class Parser {
 public:
  explicit Parser(absl::string_view text) : s_(text) {}

  absl::Status Document(Struct* out) {
    SkipSpace();
    if (!Consume('{')) return Error("expected an object");
    if (absl::Status st = Object(out, 1); !st.ok()) return st;
    SkipSpace();
    if (i_ != s_.size()) return Error("text after the object");
    return absl::OkStatus();
  }

 private:
  // After the opening '{'.
  absl::Status Object(Struct* out, int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (Consume('}')) return absl::OkStatus();
    while (true) {
      SkipSpace();
      std::string key;
      if (!Consume('"')) return Error("expected a string key");
      if (absl::Status st = String(&key); !st.ok()) return st;
      SkipSpace();
      if (!Consume(':')) return Error("expected ':'");
      auto [field, added] = out->mutable_fields()->try_emplace(std::move(key));
      if (!added) return Error("repeated key");
      if (absl::Status st = AnyValue(&field->second, depth); !st.ok()) return st;
      SkipSpace();
      if (Consume('}')) return absl::OkStatus();
      if (!Consume(',')) return Error("expected ',' or '}'");
    }
  }

  // After the opening '['.
  absl::Status Array(ListValue* out, int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (Consume(']')) return absl::OkStatus();
    while (true) {
      if (absl::Status st = AnyValue(out->add_values(), depth); !st.ok()) return st;
      SkipSpace();
      if (Consume(']')) return absl::OkStatus();
      if (!Consume(',')) return Error("expected ',' or ']'");
    }
  }

  absl::Status AnyValue(Value* out, int depth) {
    SkipSpace();
    if (i_ >= s_.size()) return Error("expected a value");
    switch (s_[i_]) {
      case '{':
        ++i_;
        return Object(out->mutable_struct_value(), depth + 1);
      case '[':
        ++i_;
        return Array(out->mutable_list_value(), depth + 1);
      case '"':
        ++i_;
        return String(out->mutable_string_value());
      case 't':
        if (!Literal("true")) return Error("expected a value");
        out->set_bool_value(true);
        return absl::OkStatus();
      case 'f':
        if (!Literal("false")) return Error("expected a value");
        out->set_bool_value(false);
        return absl::OkStatus();
      case 'n':
        if (!Literal("null")) return Error("expected a value");
        out->set_null_value(google::protobuf::NULL_VALUE);
        return absl::OkStatus();
      default:
        return Number(out);
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status Number(Value* out) {
    const size_t start = i_;
    Consume('-');
    if (Consume('0')) {
    } else if (!Digits()) {
      return Error("expected a value");
    }
    const bool fraction = Consume('.');
    if (fraction && !Digits()) return Error("expected digits after '.'");
    const bool exponent = Consume('e') || Consume('E');
    if (exponent) {
      if (!Consume('+')) Consume('-');
      if (!Digits()) return Error("expected an exponent");
    }
    absl::string_view text = s_.substr(start, i_ - start);
    // A whole number of up to 15 digits (the records' times and counts) is exact in a double:
    // converted here, without the general conversion's work.
    if (!fraction && !exponent && text.size() <= 15) {
      const bool negative = text[0] == '-';
      int64_t n = 0;
      for (char c : text.substr(negative ? 1 : 0)) n = n * 10 + (c - '0');
      const double magnitude = static_cast<double>(n);
      out->set_number_value(negative ? -magnitude : magnitude);  // "-0" is -0.0, as parsed
      return absl::OkStatus();
    }
    double d = 0;
    if (!absl::SimpleAtod(text, &d) || !std::isfinite(d)) {
      return Error("number out of range");
    }
    out->set_number_value(d);
    return absl::OkStatus();
  }

  // After the opening '"'.
  absl::Status String(std::string* out) {
    while (true) {
      // Copy the run up to the next quote, backslash or control character at once.
      size_t run = i_;
      while (run < s_.size() && s_[run] != '"' && s_[run] != '\\' &&
             static_cast<unsigned char>(s_[run]) >= 0x20) {
        ++run;
      }
      out->append(s_.data() + i_, run - i_);
      i_ = run;
      if (i_ >= s_.size()) return Error("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return absl::OkStatus();
      if (c != '\\') return Error("control character in a string");
      if (i_ >= s_.size()) return Error("unterminated string");
      switch (s_[i_++]) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return Error("bad \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate: its low one must follow
            uint32_t low = 0;
            if (!Consume('\\') || !Consume('u') || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
              return Error("unpaired surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("unpaired surrogate in a \\u escape");
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
  }

  bool Hex4(uint32_t* cp) {
    if (s_.size() - i_ < 4) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_ + k];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return false;
      }
    }
    i_ += 4;
    *cp = v;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool Digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool Literal(absl::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  bool Consume(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  void SkipSpace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON at offset ", i_, ": ", what));
  }

  absl::string_view s_;
  size_t i_ = 0;
};

}  // namespace

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json) {
  Struct out;
  if (absl::Status st = Parser(json).Document(&out); !st.ok()) return st;
  return out;
}

}  // namespace onestory
