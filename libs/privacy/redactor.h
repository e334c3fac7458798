// Masks personal data in free text before it is stored: payment card numbers always, and
// whatever else a deployment configures as named RE2 regular expressions.
//
//   ASSIGN_OR_RETURN(std::vector<RedactionPattern> patterns,
//                    Redactor::ParsePatternFile(file_contents));  // "iban  \bDE\d{20}\b"
//   ASSIGN_OR_RETURN(Redactor redactor, Redactor::Create(std::move(patterns)));
//   int masked = 0;
//   std::string safe = redactor.Mask("card 4111 1111 1111 1111, DE89370400440532013000", &masked);
//   // safe == "card **** **** **** 1111, [iban]", masked == 2
//
// A Redactor is immutable: Mask is const and thread-safe, and copies share the compiled
// patterns, so one instance (or cheap copies of it) can serve every request. Masking is a
// best-effort filter for text people type, not a guarantee: see README.md for what it misses.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace onestory::privacy {

// One configured pattern: every match is replaced by "[<name>]".
struct RedactionPattern {
  std::string name;   // 1-32 characters of [a-z0-9_-]; names need not be unique
  std::string regex;  // RE2 syntax, matched against UTF-8 text
};

class Redactor {
 public:
  // A Redactor for `patterns` (which may be empty: cards are masked regardless). INVALID_ARGUMENT
  // naming the pattern when a name is not [a-z0-9_-]{1,32}, a regex does not compile, matches
  // the empty string, or uses \C (which could cut a UTF-8 character in half), or when two
  // patterns use the same named group (they are compiled as one alternation).
  static absl::StatusOr<Redactor> Create(std::vector<RedactionPattern> patterns);

  // Parses a pattern file: one "name<TAB or spaces>regex" per line; surrounding whitespace is
  // trimmed (write a trailing space in a regex as [ ]), blank lines and lines starting with '#'
  // are ignored. INVALID_ARGUMENT starting "line <n>: " for a line without a regex and for the
  // errors Create reports about a single pattern.
  static absl::StatusOr<std::vector<RedactionPattern>> ParsePatternFile(absl::string_view text);

  // `text` with payment card numbers masked and then every match of a configured pattern
  // replaced by "[<name>]". A card is a maximal run of 13-19 ASCII digits, optionally grouped by
  // single spaces or dashes, that passes the Luhn check and is not joined to a letter, digit or
  // '_' (directly or through a '-', as in "ORD-2024-..."); all its digits but the last four
  // become '*' and the separators stay. Patterns are scanned together: when matches overlap,
  // the one starting first wins, and at the same start the pattern listed first. Stores the
  // number of replacements (cards plus pattern matches) in *count unless count is null. Valid
  // UTF-8 in gives valid UTF-8 out. Without patterns, Mask is one pass over the text plus the
  // copy of the result; the patterns add one RE2 scan.
  std::string Mask(absl::string_view text, int* count = nullptr) const;

  // Mask for a text that is usually left as it is (every free-text field of every Append):
  // returns the number of replacements and stores the masked text in *out only when it is not
  // 0. Without patterns, a text with fewer than 13 ASCII digits in all is only counted, 8 bytes
  // at a time, and not copied.
  int MaskIfAny(absl::string_view text, std::string* out) const;

  // True when no patterns are configured (cards are masked all the same).
  bool empty() const { return patterns_ == nullptr; }

 private:
  struct CompiledPatterns;  // the RE2 alternation and the replacement for each of its branches

  explicit Redactor(std::shared_ptr<const CompiledPatterns> patterns)
      : patterns_(std::move(patterns)) {}

  std::shared_ptr<const CompiledPatterns> patterns_;  // null when no patterns are configured
};

// The number of ASCII digits ('0' to '9') in `text` (Redactor::MaskIfAny's first look).
size_t CountDigits(absl::string_view text);

// True when `digits` is non-empty, holds only ASCII digits and passes the Luhn (mod 10) check
// that payment card numbers carry in their last digit.
bool LuhnValid(absl::string_view digits);

}  // namespace onestory::privacy
