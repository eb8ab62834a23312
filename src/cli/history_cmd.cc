// `strata history`: stratad's own history of its main series (1 s for an hour, 1 min for 7
// days, 1 h for 400 days) as a table, CSV or JSON: the `ntpq -c sysstats; sleep 300` loop in
// one command.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <ctime>

#include "cli/commands.h"
#include "control/control_server.h"
#include "control/json_text.h"

namespace strata::cli {

namespace {

std::string value_text(const nlohmann::json& v) {
  if (!v.is_number()) return "-";
  const double x = v.get<double>();
  if (std::fabs(x) >= 100 || x == std::floor(x)) return fmt::format("{:.0f}", x);
  if (std::fabs(x) >= 1) return fmt::format("{:.2f}", x);
  return fmt::format("{:.4f}", x);
}

}  // namespace

std::string utc_text(int64_t s) {
  const time_t t = static_cast<time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::optional<int64_t> parse_when(std::string_view text, int64_t now_s) {
  if (text.empty()) return std::nullopt;
  // A length of time before now.
  std::string_view t = text;
  if (t.front() == '-') t.remove_prefix(1);
  const char unit = t.empty() ? 0 : t.back();
  const int64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
  if (scale > 0) {
    t.remove_suffix(1);
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec != std::errc() || end != t.data() + t.size() || t.empty() || n > int64_t{100} * 366 * 86400 / scale)
      return std::nullopt;
    return now_s - n * scale;
  }
  // Unix seconds.
  int64_t n = 0;
  if (const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      ec == std::errc() && end == text.data() + text.size())
    return n;
  // UTC date and time.
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  char sep = 0;
  int used = 0;
  const std::string s(text);
  const int fields = std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d%n", &year, &month, &day, &sep, &hour, &minute, &used);
  if (fields < 6 || (sep != 'T' && sep != ' ')) {
    if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &year, &month, &day, &used) != 3 || used != static_cast<int>(s.size()))
      return std::nullopt;
  } else {
    std::string_view rest = std::string_view(s).substr(static_cast<size_t>(used));
    if (!rest.empty() && rest.front() == ':') {
      int more = 0;
      if (std::sscanf(std::string(rest).c_str(), ":%2d%n", &second, &more) != 1) return std::nullopt;
      rest.remove_prefix(static_cast<size_t>(more));
    }
    if (rest == "Z") rest = "";
    if (!rest.empty()) return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

int run_history(const HistoryOptions& opt) {
  const int64_t now_s = static_cast<int64_t>(std::time(nullptr));
  nlohmann::json request{{"command", "history"}};
  for (const auto& [flag, text] : {std::pair{"since", opt.since}, std::pair{"until", opt.until}}) {
    if (text.empty()) continue;  // --until: now
    const auto when = parse_when(text, now_s);
    if (!when) {
      fmt::print(stderr, "strata history: --{} '{}': expected 30m, 1h, 7d, unix seconds or "
                         "2026-12-04T10:00:00Z\n", flag, text);
      return 2;
    }
    request[flag] = *when;
  }
  if (!opt.step.empty()) request["step"] = opt.step == "1s" ? 1 : opt.step == "1m" ? 60 : 3600;
  const bool table = !opt.json && !opt.csv;
  if (!opt.series.empty()) request["series"] = opt.series;
  else if (table) request["series"] = "requests,replies,rate_limited,kod,kernel_drops,unique_1m";
  nlohmann::json reply;
  try {
    reply = control::request(opt.control, request, 30000);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata history: {}\n", e.what());
    return 2;
  }
  if (opt.json) {
    reply.erase("ok");
    reply.erase("version");
    fmt::print("{}\n", control::json_text(reply));
    return 0;
  }
  const int64_t step = reply.value("step", int64_t{1});
  const int64_t start = reply.value("start", int64_t{0});
  const size_t points = reply.value("points", size_t{0});
  const auto& series = reply["series"];
  const char* which = opt.max && step > 1 ? "max" : "mean";
  if (opt.csv) {
    std::string head = "time,unix";
    for (const auto& s : series) head += "," + s.value("name", std::string());
    fmt::print("{}\n", head);
    for (size_t i = 0; i < points; ++i) {
      const int64_t t = start + static_cast<int64_t>(i) * step;
      std::string line = fmt::format("{},{}", utc_text(t), t);
      for (const auto& s : series) {
        const auto& v = s[which][i];
        line += v.is_number() ? fmt::format(",{}", v.get<double>()) : ",";
      }
      fmt::print("{}\n", line);
    }
    return 0;
  }
  fmt::print("history, {} per row ({} of each), {} - {} UTC\n",
             step == 1 ? "1 s" : step == 60 ? "1 min" : "1 h", step == 1 ? "value" : which, utc_text(start),
             utc_text(start + static_cast<int64_t>(points) * step));
  std::string head = fmt::format("{:<19}", "time (UTC)"), units = fmt::format("{:<19}", "");
  for (const auto& s : series) {
    const std::string name = s.value("name", std::string());
    const size_t width = std::max<size_t>(12, name.size() + 1);
    head += fmt::format("{:>{}}", name, width);
    units += fmt::format("{:>{}}", s.value("unit", std::string()), width);
  }
  fmt::print("{}\n{}\n", head, units);
  for (size_t i = 0; i < points; ++i) {
    std::string line = fmt::format("{:<19}", utc_text(start + static_cast<int64_t>(i) * step));
    for (const auto& s : series) {
      const size_t width = std::max<size_t>(12, s.value("name", std::string()).size() + 1);
      line += fmt::format("{:>{}}", value_text(s[which][i]), width);
    }
    fmt::print("{}\n", line);
  }
  return 0;
}

}  // namespace strata::cli
