// Logging to stderr (journald picks it up under systemd): one line per event with a level.
// Any thread; each line is written with one write(2) so lines from threads do not interleave.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
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

// Rate limit for a repeating message (a flood must not flood the log): up to `burst` lines,
// then one per `interval`; the next line that passes says how many were suppressed. One per
// call site; thread-safe.
class LogLimiter {
 public:
  explicit LogLimiter(int burst = 5, std::chrono::nanoseconds interval = std::chrono::seconds(60))
      : burst_(burst), interval_(interval), tokens_(burst) {}

  // Whether a line may go out at monotonic time `now`; `suppressed` gets how many were held
  // back since the last one that went out.
  bool allow(std::chrono::nanoseconds now, uint64_t& suppressed);

  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (!log_enabled(level)) return;
    uint64_t suppressed = 0;
    if (!allow(std::chrono::steady_clock::now().time_since_epoch(), suppressed)) return;
    std::string line = fmt::format(format, std::forward<Args>(args)...);
    if (suppressed > 0) line += fmt::format(" ({} similar messages suppressed)", suppressed);
    log_line(level, line);
  }

 private:
  std::mutex mu_;
  int burst_;
  std::chrono::nanoseconds interval_;
  double tokens_;
  std::chrono::nanoseconds last_{0};
  uint64_t suppressed_ = 0;
};

}  // namespace strata::base
