// Structured logging: one line per event, `key=value` pairs, to stderr.
//
//   Log(LogLevel::kWarning, "redis.disconnected", {{"addr", addr}, {"reason", why}});
//   // ts=2026-11-22T10:00:00.123Z level=warning event=redis.disconnected addr=... reason="..."
//
// Values holding spaces, quotes or '=' are quoted. Thread-safe: each line is written with one
// write(2) call.
#pragma once

#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>

namespace onestory {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Lines below this level are dropped. Default kInfo.
void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warning" or "error"; false for anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);
bool LogEnabled(LogLevel level);

using LogField = std::pair<absl::string_view, std::string>;
void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace onestory
