// Structured logging: one line per event to stderr, as `key=value` pairs (the default) or as
// one JSON object (SetLogFormat(LogFormat::kJson)).
//
//   Log(LogLevel::kWarning, "redis.disconnected", {{"addr", addr}, {"reason", why}});
//   // ts=2026-11-22T10:00:00.123Z level=warning event=redis.disconnected addr=... reason="..."
//   // {"ts":"2026-11-22T10:00:00.123Z","level":"warning","event":"redis.disconnected",...}
//
// Text values holding spaces, quotes or '=' are quoted; JSON values are strings, with bytes that
// are not UTF-8 replaced by U+FFFD. Thread-safe: each line is written with one write(2) call.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace onestory {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below this level are dropped. Default kInfo.
void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warning" or "error"; false for anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);
bool LogEnabled(LogLevel level);

enum class LogFormat { kText, kJson };
void SetLogFormat(LogFormat format);
// Parses "text" or "json"; false for anything else.
bool ParseLogFormat(absl::string_view text, LogFormat* format);

using LogField = std::pair<absl::string_view, std::string>;
void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace onestory
