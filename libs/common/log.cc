#include "libs/common/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace onestory {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};

constexpr absl::string_view kLevelNames[] = {"debug", "info", "warning", "error"};

void AppendValue(std::string* out, absl::string_view value) {
  bool quote = value.empty() || value.find_first_of(" \"=\t\n\r") != absl::string_view::npos;
  if (!quote) {
    out->append(value.data(), value.size());
    return;
  }
  out->push_back('"');
  for (char c : value) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->push_back(c);
    }
  }
  out->push_back('"');
}

// The length of the valid UTF-8 sequence at the start of s (0 when it is not one).
size_t Utf8Length(absl::string_view s) {
  unsigned char c = s[0];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(s[i]) >> 6) != 0x2) return 0;
  }
  return n;
}

void AppendJsonString(std::string* out, absl::string_view value) {
  out->push_back('"');
  while (!value.empty()) {
    char c = value[0];
    size_t n = Utf8Length(value);
    if (n == 0) {
      out->append("\\ufffd");
      value.remove_prefix(1);
      continue;
    }
    if (n > 1) {
      out->append(value.data(), n);
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      absl::StrAppend(out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      out->push_back(c);
    }
    value.remove_prefix(n);
  }
  out->push_back('"');
}

}  // namespace

void SetLogFormat(LogFormat format) { g_json.store(format == LogFormat::kJson); }

bool ParseLogFormat(absl::string_view text, LogFormat* format) {
  if (text == "text") *format = LogFormat::kText;
  if (text == "json") *format = LogFormat::kJson;
  return text == "text" || text == "json";
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  for (int i = 0; i < 4; ++i) {
    if (text == kLevelNames[i]) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  absl::string_view level_name = kLevelNames[static_cast<int>(level)];
  if (g_json.load(std::memory_order_relaxed)) {
    std::string line =
        absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", level_name, "\",\"event\":");
    AppendJsonString(&line, event);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      AppendJsonString(&line, key);
      line.push_back(':');
      AppendJsonString(&line, value);
    }
    line.append("}\n");
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
    return;
  }
  std::string line = absl::StrCat("ts=", ts, " level=", level_name, " event=", event);
  for (const auto& [key, value] : fields) {
    absl::StrAppend(&line, " ", key, "=");
    AppendValue(&line, value);
  }
  line.push_back('\n');
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace onestory
