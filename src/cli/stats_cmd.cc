// `strata stats`: the server's counters from its control socket, first with ntpq's sysstats
// labels (so scripts written for `ntpq -c sysstats` keep working), then strata's own.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "control/json_text.h"
#include "cli/commands.h"
#include "control/control_server.h"
#include "stats/counters.h"

namespace strata::cli {

namespace {

// ntpq prints "label:" padded to 24 columns, then the value (a longer label gets one space).
void print_row(std::string_view label, const std::string& value) {
  fmt::print("{:<24}{}\n", fmt::format("{}: ", label), value);
}

std::string label_of(std::string_view name) {
  std::string s(name);
  for (char& c : s)
    if (c == '_') c = ' ';
  return s;
}

}  // namespace

int run_stats(const StatsOptions& opt) {
  nlohmann::json reply;
  try {
    reply = control::request(opt.control, {{"command", "stats"}});
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata stats: {}\n", e.what());
    return 2;
  }
  if (opt.json) {
    fmt::print("{}\n", control::json_text(reply, 2));
    return 0;
  }
  const auto& counters = reply.at("counters");
  print_row("uptime", std::to_string(static_cast<uint64_t>(reply.value("uptime", 0.0))));
  print_row("sysstats reset", std::to_string(static_cast<uint64_t>(reply.value("since_reset", 0.0))));
  for (const auto& info : stats::kCounterInfo)
    if (!info.ntpq_label.empty())
      print_row(info.ntpq_label, std::to_string(counters.value(std::string(info.name), uint64_t{0})));
  fmt::print("\n");
  for (const auto& info : stats::kCounterInfo)
    if (info.ntpq_label.empty())
      print_row(label_of(info.name), std::to_string(counters.value(std::string(info.name), uint64_t{0})));
  const auto& h = reply.at("processing_time_ns");
  fmt::print("\n");
  print_row("processing time p50", fmt::format("{:.1f} us", h.value("p50", 0.0) / 1e3));
  print_row("processing time p99", fmt::format("{:.1f} us", h.value("p99", 0.0) / 1e3));
  print_row("processing time p99.9", fmt::format("{:.1f} us", h.value("p999", 0.0) / 1e3));
  if (reply.contains("poll_interval_clusters")) {
    fmt::print("\n");
    const double all = std::max(1.0, reply["poll_interval_ms"].value("count", 0.0));
    for (const auto& c : reply["poll_interval_clusters"])
      print_row("poll interval " + c.value("range", std::string()),
                fmt::format("{} ({:.1f}%)", c.value("gaps", uint64_t{0}),
                            100.0 * c.value("gaps", 0.0) / all));
  }
  if (reply.contains("clients")) {
    const auto& c = reply["clients"];
    print_row("client records", fmt::format("{} of {}", c.value("records", 0), c.value("capacity", 0)));
    print_row("client memory", fmt::format("{:.1f} MiB", c.value("memory_bytes", 0.0) / (1 << 20)));
  }
  const auto& t = reply.at("time");
  fmt::print("\n");
  print_row("time source", t.value("source", std::string("?")) +
                               (t.value("synchronised", false) ? "" : " (unsynchronised)"));
  print_row("stratum", std::to_string(t.value("stratum", 0)));
  print_row("refid", t.value("refid", std::string()));
  print_row("leap", std::to_string(t.value("leap", 0)));
  print_row("root delay", fmt::format("{:.6f} s", t.value("root_delay", 0.0)));
  print_row("root dispersion", fmt::format("{:.6f} s", t.value("root_dispersion", 0.0)));
  print_row("precision", fmt::format("2^{} s", t.value("precision", 0)));
  if (t.contains("source_error")) print_row("source error", t.value("source_error", std::string()));
  print_row("workers", std::to_string(reply.value("workers", 0)));
  return 0;
}

int run_reload(const std::string& control_path) {
  nlohmann::json reply;
  try {
    // A reload may wait for a rules file that was just written to settle (up to 5 s).
    reply = control::request(control_path, {{"command", "reload"}}, 30000);
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata reload: {}\n", e.what());
    // The daemon's reasons, one per line, come with a refused reload.
    return 1;
  }
  for (const auto& w : reply.value("warnings", nlohmann::json::array()))
    fmt::print(stderr, "warning: {}\n", w.get<std::string>());
  const auto changes = reply.value("changes", nlohmann::json::array());
  if (changes.empty()) fmt::print("reloaded: nothing changed\n");
  for (const auto& c : changes) fmt::print("{}\n", c.get<std::string>());
  fmt::print("in force: {} access rules, {} keys, rate limiting {}\n", reply.value("rules", 0),
             reply.value("keys", 0), reply.value("ratelimit", false) ? "on" : "off");
  for (const auto& part : reply.value("needs_restart", nlohmann::json::array()))
    fmt::print("changed, needs a restart (kept as running): {}\n", part.get<std::string>());
  return 0;
}

}  // namespace strata::cli
