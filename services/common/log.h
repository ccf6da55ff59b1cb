// Structured logging: one JSON object per line on stderr with time, level, message and any
// context fields (order_id, workflow_id, request_id, ...). Thread-safe; each line is written with
// a single write so lines from different threads never interleave.
#pragma once

#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>

namespace order_platform {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

using LogField = std::pair<absl::string_view, absl::string_view>;

// Writes {"time":..., "level":..., "msg": message, <fields>...}.
void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields = {});

// Lines below `level` are dropped. Default kInfo.
void SetMinLogLevel(LogLevel level);

}  // namespace order_platform
