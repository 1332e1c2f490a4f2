// Structured, line-per-event logging to stderr.
//
// Text: `2026-11-25T01:02:03.123456Z INFO listening fastpath=0.0.0.0:8000`
// JSON: `{"ts":"2026-11-25T01:02:03.123456Z","level":"info","msg":"listening","fastpath":"..."}`
// Thread-safe: each event is formatted in full and written with one write(2) call. Never used
// per command.
#ifndef CRABCACHE_CORE_LOG_H_
#define CRABCACHE_CORE_LOG_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace crabcache::core {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat : int { kText = 0, kJson = 1 };

using LogField = std::pair<std::string_view, std::string>;

void SetLogLevel(LogLevel level);
void SetLogFormat(LogFormat format);
bool ParseLogLevel(std::string_view name, LogLevel* level);     // debug|info|warning|error
bool ParseLogFormat(std::string_view name, LogFormat* format);  // text|json
bool LogEnabled(LogLevel level);

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

// Formats one event without writing it (used by Log and by tests).
std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view message,
                          std::initializer_list<LogField> fields);

}  // namespace crabcache::core

#endif  // CRABCACHE_CORE_LOG_H_
