// Logging to stderr (journald picks it up under systemd): one line per event with a level.
// Any thread; each line is written with one write(2) so lines from threads do not interleave.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace strata::base {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view message);

template <typename... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!log_enabled(level)) return;
  log_line(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace strata::base
