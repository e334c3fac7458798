#include "libs/common/json_value.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace onestory {
namespace {

// As protobuf's JSON parser allows.
constexpr int kMaxDepth = 100;

// Whether two keys are equal. Most keys of a record are two or three characters and most
// comparisons are of different keys: the size and the ends decide those without a memcmp call.
bool SameKey(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && (a.empty() || (a.front() == b.front() && a.back() == b.back() &&
                                                std::memcmp(a.data(), b.data(), a.size()) == 0));
}

// Whether two members of `members` have the same key: pairs compared for an object of up to a
// case record's size, sorted keys beyond (a token's claims come from the caller).
bool RepeatsAKey(const std::vector<JsonValue::Member>& members) {
  constexpr size_t kPairwiseUpTo = 40;
  if (members.size() <= kPairwiseUpTo) {
    for (size_t i = 1; i < members.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (SameKey(members[i].key, members[j].key)) return true;
      }
    }
    return false;
  }
  std::vector<absl::string_view> keys;
  keys.reserve(members.size());
  for (const JsonValue::Member& m : members) keys.push_back(m.key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

}  // namespace

class JsonParser {
 public:
  explicit JsonParser(absl::string_view text) : s_(text) {}

  absl::Status Document(JsonValue* out) {
    SkipSpace();
    if (!Consume('{')) return Error("expected an object");
    out->type_ = JsonValue::Type::kObject;
    if (absl::Status st = Object(&out->members_, 1); !st.ok()) return st;
    SkipSpace();
    if (i_ != s_.size()) return Error("text after the object");
    return absl::OkStatus();
  }

 private:
  // After the opening '{'.
  absl::Status Object(std::vector<JsonValue::Member>* out, int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    const size_t start = i_ - 1;
    SkipSpace();
    if (Consume('}')) return absl::OkStatus();
    // A record's members in one allocation. Only at the top: reserving for every nested object
    // would let a small hostile text (a token's header) cost 2 KiB per five bytes.
    if (depth == 1) out->reserve(16);
    while (true) {
      SkipSpace();
      JsonValue::Member& member = out->emplace_back();
      if (!Consume('"')) return Error("expected a string key");
      if (absl::Status st = String(&member.key); !st.ok()) return st;
      SkipSpace();
      if (!Consume(':')) return Error("expected ':'");
      if (absl::Status st = AnyValue(&member.value, depth); !st.ok()) return st;
      SkipSpace();
      if (Consume('}')) break;
      if (!Consume(',')) return Error("expected ',' or '}'");
    }
    if (RepeatsAKey(*out)) return ErrorAt(start, "repeated key in the object");
    return absl::OkStatus();
  }

  // After the opening '['.
  absl::Status Array(std::vector<JsonValue>* out, int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (Consume(']')) return absl::OkStatus();
    while (true) {
      if (absl::Status st = AnyValue(&out->emplace_back(), depth); !st.ok()) return st;
      SkipSpace();
      if (Consume(']')) return absl::OkStatus();
      if (!Consume(',')) return Error("expected ',' or ']'");
    }
  }

  absl::Status AnyValue(JsonValue* out, int depth) {
    SkipSpace();
    if (i_ >= s_.size()) return Error("expected a value");
    switch (s_[i_]) {
      case '{':
        ++i_;
        out->type_ = JsonValue::Type::kObject;
        return Object(&out->members_, depth + 1);
      case '[':
        ++i_;
        out->type_ = JsonValue::Type::kArray;
        return Array(&out->items_, depth + 1);
      case '"':
        ++i_;
        out->type_ = JsonValue::Type::kString;
        return String(&out->string_);
      case 't':
        if (!Literal("true")) return Error("expected a value");
        out->type_ = JsonValue::Type::kBool;
        out->boolean_ = true;
        return absl::OkStatus();
      case 'f':
        if (!Literal("false")) return Error("expected a value");
        out->type_ = JsonValue::Type::kBool;
        return absl::OkStatus();
      case 'n':
        if (!Literal("null")) return Error("expected a value");
        return absl::OkStatus();
      default:
        return Number(out);
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status Number(JsonValue* out) {
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
      out->type_ = JsonValue::Type::kNumber;
      out->number_ = negative ? -magnitude : magnitude;  // "-0" is -0.0, as parsed
      return absl::OkStatus();
    }
    double d = 0;
    if (!absl::SimpleAtod(text, &d) || !std::isfinite(d)) {
      return Error("number out of range");
    }
    out->type_ = JsonValue::Type::kNumber;
    out->number_ = d;
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

  absl::Status Error(absl::string_view what) const { return ErrorAt(i_, what); }
  static absl::Status ErrorAt(size_t offset, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("JSON at offset ", offset, ": ", what));
  }

  absl::string_view s_;
  size_t i_ = 0;
};

const JsonValue* JsonValue::Find(absl::string_view key) const {
  for (const Member& m : members_) {
    if (SameKey(m.key, key)) return &m.value;
  }
  return nullptr;
}

absl::StatusOr<JsonValue> ParseJsonObject(absl::string_view json) {
  JsonValue out;
  if (absl::Status st = JsonParser(json).Document(&out); !st.ok()) return st;
  return out;
}

namespace {

void ToProtobufValue(const JsonValue& v, google::protobuf::Value* out) {
  switch (v.type()) {
    case JsonValue::Type::kNull:
      out->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case JsonValue::Type::kBool:
      out->set_bool_value(v.boolean());
      break;
    case JsonValue::Type::kNumber:
      out->set_number_value(v.number());
      break;
    case JsonValue::Type::kString:
      out->set_string_value(v.string());
      break;
    case JsonValue::Type::kArray: {
      google::protobuf::ListValue* list = out->mutable_list_value();
      for (const JsonValue& item : v.items()) ToProtobufValue(item, list->add_values());
      break;
    }
    case JsonValue::Type::kObject:
      *out->mutable_struct_value() = ToStruct(v);
      break;
  }
}

}  // namespace

google::protobuf::Struct ToStruct(const JsonValue& object) {
  google::protobuf::Struct out;
  for (const JsonValue::Member& m : object.members()) {
    ToProtobufValue(m.value, &(*out.mutable_fields())[m.key]);
  }
  return out;
}

}  // namespace onestory
