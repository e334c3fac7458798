#include "libs/retention/retention.h"

#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/validation.h"

namespace onestory::retention {

Limits DefaultLimits() {
  Limits l;
  l.max_events = kDefaultMaxEvents;
  return l;
}

namespace {

// A line's settings; unset fields come from '*' (or DefaultLimits()).
struct Line {
  int number = 0;
  std::optional<absl::Duration> max_age;
  std::optional<int64_t> max_events;
  std::optional<absl::Duration> inactive_after;
};

absl::Status LineError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

absl::StatusOr<int64_t> ParseCount(absl::string_view key, absl::string_view v, int line) {
  int64_t n = 0;
  if (v.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(v[0])) ||
      !absl::SimpleAtoi(v, &n)) {
    return LineError(line, absl::StrCat(key, ": '", v, "' is not a whole number >= 0"));
  }
  return n;
}

// "<n><unit>" with unit s, m, h or d; a bare "0" is allowed.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view key, absl::string_view v, int line) {
  if (v == "0") return absl::ZeroDuration();
  int64_t unit_s = 0;
  if (!v.empty()) {
    switch (v.back()) {
      case 's':
        unit_s = 1;
        break;
      case 'm':
        unit_s = 60;
        break;
      case 'h':
        unit_s = 3600;
        break;
      case 'd':
        unit_s = 86400;
        break;
      default:
        break;
    }
  }
  if (unit_s == 0) {
    return LineError(line, absl::StrCat(key, ": '", v, "' needs a unit: s, m, h or d (e.g. 90d)"));
  }
  absl::StatusOr<int64_t> n = ParseCount(key, v.substr(0, v.size() - 1), line);
  if (!n.ok()) {
    return LineError(
        line, absl::StrCat(key, ": '", v, "' is not a whole number >= 0 with a unit s, m, h or d"));
  }
  // Kept in milliseconds in Redis arguments: refuse what would not fit.
  if (*n > std::numeric_limits<int64_t>::max() / 1000 / unit_s) {
    return LineError(line, absl::StrCat(key, ": '", v, "' is too large"));
  }
  return absl::Seconds(*n * unit_s);
}

Limits Resolve(const Limits& base, const Line& l) {
  Limits out = base;
  if (l.max_age) out.max_age = *l.max_age;
  if (l.max_events) out.max_events = *l.max_events;
  if (l.inactive_after) out.inactive_after = *l.inactive_after;
  return out;
}

}  // namespace

absl::StatusOr<Rules> ParseRules(absl::string_view text) {
  std::optional<Line> star;
  std::vector<std::pair<std::string, Line>> lines;
  absl::flat_hash_map<std::string, int> seen;  // tenant -> line
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    absl::string_view s = raw.substr(0, raw.find('#'));
    std::vector<absl::string_view> words =
        absl::StrSplit(s, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    std::string tenant(words[0]);
    if (tenant != "*") {
      if (absl::Status st = ValidateTenant(tenant); !st.ok()) {
        return LineError(
            number, absl::StrCat("'", tenant, "' is neither '*' nor a tenant: ", st.message()));
      }
    }
    auto [it, inserted] = seen.try_emplace(tenant, number);
    if (!inserted) {
      return LineError(number,
                       absl::StrCat("'", tenant, "' is listed already on line ", it->second));
    }
    Line line;
    line.number = number;
    for (size_t i = 1; i < words.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(words[i], absl::MaxSplits('=', 1));
      if (words[i].find('=') == absl::string_view::npos) {
        return LineError(number, absl::StrCat("'", words[i], "': expected <setting>=<value>"));
      }
      absl::string_view key = kv.first;
      if (key == "max_age") {
        if (line.max_age) return LineError(number, "max_age given twice");
        absl::StatusOr<absl::Duration> d = ParseDuration(key, kv.second, number);
        if (!d.ok()) return d.status();
        line.max_age = *d;
      } else if (key == "inactive_after") {
        if (line.inactive_after) return LineError(number, "inactive_after given twice");
        absl::StatusOr<absl::Duration> d = ParseDuration(key, kv.second, number);
        if (!d.ok()) return d.status();
        line.inactive_after = *d;
      } else if (key == "max_events") {
        if (line.max_events) return LineError(number, "max_events given twice");
        absl::StatusOr<int64_t> n = ParseCount(key, kv.second, number);
        if (!n.ok()) return n.status();
        line.max_events = *n;
      } else {
        return LineError(number, absl::StrCat("unknown setting '", key,
                                              "' (known: max_age, max_events, inactive_after)"));
      }
    }
    if (tenant == "*") {
      star = line;
    } else {
      lines.emplace_back(std::move(tenant), line);
    }
  }
  Rules rules;
  if (star) rules.fallback = Resolve(DefaultLimits(), *star);
  for (auto& [tenant, line] : lines) {
    rules.tenants.emplace(std::move(tenant), Resolve(rules.fallback, line));
  }
  return rules;
}

Policy::Policy() : rules_(std::make_shared<const Rules>()) {}

Policy::Policy(Rules rules) : rules_(std::make_shared<const Rules>(std::move(rules))) {}

absl::Status Policy::Load(const std::string& path) {
  {
    absl::MutexLock l(&mu_);
    path_ = path;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("retention file ", path, ": cannot be opened"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::PermissionDeniedError(absl::StrCat("retention file ", path, ": read failed"));
  }
  absl::StatusOr<Rules> rules = ParseRules(text.str());
  if (!rules.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("retention file ", path, ": ", rules.status().message()));
  }
  Set(*std::move(rules));
  return absl::OkStatus();
}

absl::Status Policy::Reload() {
  std::string path;
  {
    absl::MutexLock l(&mu_);
    path = path_;
  }
  if (path.empty()) return absl::FailedPreconditionError("no retention file was loaded");
  return Load(path);
}

void Policy::Set(Rules rules) {
  auto next = std::make_shared<const Rules>(std::move(rules));
  absl::MutexLock l(&mu_);
  rules_.swap(next);
  // The old rules are freed after the lock is released (next goes out of scope later).
}

Limits Policy::For(absl::string_view tenant) const {
  absl::ReaderMutexLock l(&mu_);
  auto it = rules_->tenants.find(tenant);
  return it == rules_->tenants.end() ? rules_->fallback : it->second;
}

}  // namespace onestory::retention
