// Logging to stderr (see log.h).
#include "base/log.h"

#include <algorithm>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace strata::base {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

// Under systemd (JOURNAL_STREAM set) the "<N>" syslog priority prefixes of sd-daemon(3) make
// journald record the level; on a terminal a word says it.
const bool g_journal = std::getenv("JOURNAL_STREAM") != nullptr;

const char* prefix(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return g_journal ? "<7>" : "debug: ";
    case LogLevel::kInfo: return g_journal ? "<6>" : "";
    case LogLevel::kWarning: return g_journal ? "<4>" : "warning: ";
    case LogLevel::kError: return g_journal ? "<3>" : "error: ";
  }
  return "";
}
}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

namespace {
// Outside journald (which stamps each line itself) a line starts with its UTC time, to the
// millisecond: "2026-12-01T21:40:00.123Z ".
void append_time(std::string& line) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  ::gmtime_r(&ts.tv_sec, &utc);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  line.append(buf, n);
  std::snprintf(buf, sizeof buf, ".%03ldZ ", ts.tv_nsec / 1'000'000);
  line.append(buf);
}

}  // namespace

void log_line(LogLevel level, std::string_view message) {
  std::string line;
  if (!g_journal) append_time(line);
  line.append(prefix(level));
  line.append(message);
  line.push_back('\n');
  // One write per line; a short write on stderr is not worth retrying for a log.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

bool LogLimiter::allow(std::chrono::nanoseconds now, uint64_t& suppressed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (last_.count() != 0) {
    const double refill = std::chrono::duration<double>(now - last_).count() /
                          std::chrono::duration<double>(interval_).count();
    tokens_ = std::min<double>(burst_, tokens_ + std::max(0.0, refill));
  }
  last_ = now;
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace strata::base
