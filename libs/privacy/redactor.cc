#include "libs/privacy/redactor.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/status_macros.h"
#include "re2/re2.h"

namespace onestory::privacy {

struct Redactor::CompiledPatterns {
  struct Branch {
    int group;                // the capturing group that wraps this pattern in `alternation`
    std::string replacement;  // "[<name>]"
  };
  // "(p1)|(p2)|...": one scan finds the leftmost match of any pattern.
  std::unique_ptr<const RE2> alternation;
  std::vector<Branch> branches;  // in pattern order, so groups ascend

  // Replaces, in `text`, every match by its branch's replacement; returns how many. Builds a new
  // string only when something matches.
  int Replace(std::string& text) const;
};

namespace {

constexpr size_t kMinCardDigits = 13;
constexpr size_t kMaxCardDigits = 19;
constexpr size_t kVisibleCardDigits = 4;
constexpr size_t kMaxNameBytes = 32;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsWordChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool IsCardSeparator(char c) { return c == ' ' || c == '-'; }

// Luhn over the digits of `run`, skipping separators.
bool LuhnValidRun(absl::string_view run) {
  int sum = 0;
  bool doubled = false;
  for (size_t i = run.size(); i-- > 0;) {
    if (!IsDigit(run[i])) continue;
    int d = run[i] - '0';
    if (doubled) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
    doubled = !doubled;
  }
  return sum % 10 == 0;
}

// Whether the run text[start, end) continues a longer token: a letter, digit or '_' right next to
// it, or one behind a '-' ("ORD-2024-000123456", "4111111111111111-x"). Such a run is an id.
bool JoinedToWord(absl::string_view text, size_t start, size_t end) {
  if (start > 0) {
    char before = text[start - 1];
    if (IsWordChar(before)) return true;
    if (before == '-' && start > 1 && IsWordChar(text[start - 2])) return true;
  }
  if (end < text.size()) {
    char after = text[end];
    if (IsWordChar(after)) return true;
    if (after == '-' && end + 1 < text.size() && IsWordChar(text[end + 1])) return true;
  }
  return false;
}

// Masks, in place, every card number in `text` (see Redactor::Mask); returns how many.
int MaskCards(std::string& text) {
  int masked = 0;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    // The maximal run of digits with single separators between them, starting here.
    const size_t start = i;
    size_t digits = 0;
    while (true) {
      for (; i < n && IsDigit(text[i]); ++i) ++digits;
      if (i + 1 < n && IsCardSeparator(text[i]) && IsDigit(text[i + 1])) {
        ++i;
        continue;
      }
      break;
    }
    const size_t end = i;
    if (digits < kMinCardDigits || digits > kMaxCardDigits) continue;
    absl::string_view run(text.data() + start, end - start);
    if (JoinedToWord(text, start, end) || !LuhnValidRun(run)) continue;
    size_t to_hide = digits - kVisibleCardDigits;
    for (size_t j = start; to_hide > 0; ++j) {
      if (IsDigit(text[j])) {
        text[j] = '*';
        --to_hide;
      }
    }
    ++masked;
  }
  return masked;
}

// Bytes in the UTF-8 character that starts with `lead` (1 for a stray continuation byte).
size_t Utf8Length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// True when `regex` uses \C (any byte), which can match half of a UTF-8 character.
bool UsesAnyByte(absl::string_view regex) {
  for (size_t i = 0; i + 1 < regex.size(); ++i) {
    if (regex[i] != '\\') continue;
    if (regex[i + 1] == 'C') return true;
    ++i;  // the escaped character cannot start an escape
  }
  return false;
}

absl::Status PatternError(absl::string_view name, absl::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("pattern \"", absl::CEscape(name), "\": ", reason));
}

// Every check on a single pattern; the compiled regex when they pass.
absl::StatusOr<std::unique_ptr<const RE2>> CompilePattern(const RedactionPattern& pattern) {
  if (pattern.name.empty() || pattern.name.size() > kMaxNameBytes ||
      !std::all_of(pattern.name.begin(), pattern.name.end(), IsNameChar)) {
    return PatternError(pattern.name, "the name must be 1-32 characters of [a-z0-9_-]");
  }
  if (UsesAnyByte(pattern.regex)) {
    return PatternError(pattern.name, "\\C is not allowed: it can cut a UTF-8 character in half");
  }
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<const RE2>(pattern.regex, options);
  if (!re->ok()) return PatternError(pattern.name, absl::StrCat("invalid regex: ", re->error()));
  if (RE2::FullMatch("", *re)) {
    return PatternError(pattern.name, "the regex matches the empty string");
  }
  return re;
}

}  // namespace

int Redactor::CompiledPatterns::Replace(std::string& text) const {
  const re2::StringPiece input(text.data(), text.size());
  absl::InlinedVector<re2::StringPiece, 16> groups(branches.back().group + 1);
  std::string out;
  size_t copied = 0;
  size_t pos = 0;
  int replaced = 0;
  while (pos <= input.size() &&
         alternation->Match(input, pos, input.size(), RE2::UNANCHORED, groups.data(),
                            static_cast<int>(groups.size()))) {
    const size_t start = groups[0].data() - input.data();
    const size_t end = start + groups[0].size();
    if (start == end) {
      // An empty match (say of "\b\d*" between words) masks nothing; look again one character on.
      if (start == input.size()) break;
      pos = std::min(input.size(), start + Utf8Length(input[start]));
      continue;
    }
    const Branch* branch = &branches.back();
    for (const Branch& b : branches) {
      if (groups[b.group].data() != nullptr) {
        branch = &b;
        break;
      }
    }
    if (replaced == 0) out.reserve(text.size());
    out.append(input.data() + copied, start - copied);
    out.append(branch->replacement);
    copied = pos = end;
    ++replaced;
  }
  if (replaced == 0) return 0;
  out.append(input.data() + copied, input.size() - copied);
  text = std::move(out);
  return replaced;
}

absl::StatusOr<Redactor> Redactor::Create(std::vector<RedactionPattern> patterns) {
  if (patterns.empty()) return Redactor(nullptr);
  auto compiled = std::make_shared<CompiledPatterns>();
  std::string alternation;
  absl::flat_hash_map<std::string, std::string> group_owner;  // named group -> pattern name
  int group = 1;
  for (const RedactionPattern& pattern : patterns) {
    ASSIGN_OR_RETURN(std::unique_ptr<const RE2> re, CompilePattern(pattern));
    for (const auto& [group_name, index] : re->NamedCapturingGroups()) {
      auto [it, inserted] = group_owner.try_emplace(group_name, pattern.name);
      if (!inserted) {
        return PatternError(pattern.name,
                            absl::StrCat("the named group \"", group_name,
                                         "\" is also used by pattern \"", it->second, "\""));
      }
    }
    absl::StrAppend(&alternation, alternation.empty() ? "(" : "|(", pattern.regex, ")");
    compiled->branches.push_back({group, absl::StrCat("[", pattern.name, "]")});
    group += 1 + re->NumberOfCapturingGroups();
  }
  RE2::Options options;
  options.set_log_errors(false);
  compiled->alternation = std::make_unique<const RE2>(alternation, options);
  if (!compiled->alternation->ok()) {
    // Each pattern compiled alone, so only the size of the whole can be at fault.
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", patterns.size(), " patterns together: ", compiled->alternation->error()));
  }
  return Redactor(std::move(compiled));
}

absl::StatusOr<std::vector<RedactionPattern>> Redactor::ParsePatternFile(absl::string_view text) {
  std::vector<RedactionPattern> patterns;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);  // also the '\r' of CRLF files
    if (line.empty() || line.front() == '#') continue;
    size_t gap = line.find_first_of(" \t");
    if (gap == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number, ": expected \"<name> <regex>\", found no regex after \"",
          absl::CEscape(line), "\""));
    }
    RedactionPattern pattern{std::string(line.substr(0, gap)),
                             std::string(absl::StripLeadingAsciiWhitespace(line.substr(gap)))};
    if (auto checked = CompilePattern(pattern); !checked.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", checked.status().message()));
    }
    patterns.push_back(std::move(pattern));
  }
  return patterns;
}

// Counted 8 bytes at a time: per byte, y = byte ^ '0' is a digit's value when it is below 10; (y |
// 0x80) - 10 keeps its high bit exactly when y & 0x7f >= 10 and never borrows from the next byte,
// and y's own high bit rules out bytes of 0x80 and up.
size_t CountDigits(absl::string_view text) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x80 * kOnes;
  size_t count = 0;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    const uint64_t y = word ^ ('0' * kOnes);
    const uint64_t below10 = ~((y | kHigh) - 10 * kOnes) & ~y & kHigh;
    count += static_cast<size_t>(std::popcount(below10));
  }
  for (; i < text.size(); ++i) count += IsDigit(text[i]) ? 1 : 0;
  return count;
}

int Redactor::MaskIfAny(absl::string_view text, std::string* out) const {
  if (patterns_ == nullptr && CountDigits(text) < kMinCardDigits) return 0;
  int count = 0;
  std::string masked = Mask(text, &count);
  if (count > 0) *out = std::move(masked);
  return count;
}

std::string Redactor::Mask(absl::string_view text, int* count) const {
  std::string masked(text);
  int replaced = MaskCards(masked);
  if (patterns_ != nullptr) replaced += patterns_->Replace(masked);
  if (count != nullptr) *count = replaced;
  return masked;
}

bool LuhnValid(absl::string_view digits) {
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) return false;
  return LuhnValidRun(digits);
}

}  // namespace onestory::privacy
