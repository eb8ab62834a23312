// `strata block add|list|remove`: stratad's dynamic blocks by hand, and the list of what the
// rules and the operator have blocked (hits, since, expires, why).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>

#include "cli/commands.h"
#include "control/control_server.h"
#include "control/json_text.h"

namespace strata::cli {

std::optional<double> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const char unit = text.back();
  const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
  std::string_view digits = scale > 0 ? text.substr(0, text.size() - 1) : text;
  double n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || !(n > 0)) return std::nullopt;
  return n * (scale > 0 ? scale : 1);
}

namespace {

std::string span_text(int64_t s) {
  if (s >= 86400) return fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
  if (s >= 3600) return fmt::format("{}h {}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m {}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

void print_list(const nlohmann::json& r) {
  const auto& blocks = r["blocks"];
  fmt::print("{} active block{} (at most {}); since start: {} placed, {} expired, {} removed by hand{}{}\n",
             blocks.size(), blocks.size() == 1 ? "" : "s", r.value("max_active", 0), r.value("placed", 0),
             r.value("expired", 0), r.value("removed", 0),
             r.value("refused_cap", 0) > 0 ? fmt::format(", {} refused at the cap", r.value("refused_cap", 0)) : "",
             r.value("enabled", true) ? "" : "; rules off ([blocks] enabled = false)");
  if (!blocks.empty()) {
    fmt::print("{:<28} {:<6} {:<4} {:<16} {:>10} {:<19} {:>10} {}\n", "prefix", "action", "by", "rule", "hits",
               "since (UTC)", "expires in", "reason");
    for (const auto& b : blocks)
      fmt::print("{:<28} {:<6} {:<4} {:<16} {:>10} {:<19} {:>10} {}\n", b.value("prefix", ""), b.value("action", ""),
                 b.value("by", ""), b.value("rule", "").empty() ? "-" : b.value("rule", ""),
                 b.value("hits", uint64_t{0}), utc_text(b.value("since", int64_t{0})),
                 span_text(b.value("remaining_s", int64_t{0})), b.value("reason", ""));
  }
  const auto& warnings = r["warnings"];
  if (!warnings.empty()) {
    fmt::print("warnings (logged, not acted on; latest first):\n");
    for (const auto& w : warnings)
      fmt::print("  {}  {:<28} {:.1f} requests/s (rule \"{}\")\n", utc_text(w.value("at", int64_t{0})),
                 w.value("prefix", ""), w.value("rate", 0.0), w.value("rule", ""));
  }
}

}  // namespace

int run_block(const BlockOptions& opt) {
  nlohmann::json request = {{"command", "blocks"}, {"op", opt.op}};
  if (opt.op != "list") request["prefix"] = opt.prefix;
  if (opt.op == "add") {
    const auto seconds = parse_duration(opt.for_text);
    if (!seconds) {
      fmt::print(stderr, "strata block add: --for {}: a duration such as 90s, 30m, 1h or 7d\n", opt.for_text);
      return 2;
    }
    request["for"] = *seconds;
    request["action"] = opt.action;
    request["reason"] = opt.reason;
  }
  nlohmann::json reply;
  try {
    reply = control::request(opt.control, request, 10000);
  } catch (const std::exception& e) {
    // stratad's refusal (a bad prefix, the cap, no such block): 1; no stratad to ask: 2.
    const std::string_view what = e.what();
    const bool refused = what.starts_with("stratad: ");
    fmt::print(stderr, "strata block {}: {}\n", opt.op, refused ? what.substr(9) : what);
    return refused ? 1 : 2;
  }
  reply.erase("ok");
  reply.erase("changed");
  reply.erase("version");
  if (opt.json) {
    fmt::print("{}\n", control::json_text(reply));
    return 0;
  }
  if (opt.op == "list") {
    print_list(reply);
  } else if (opt.op == "add") {
    const auto& b = reply["block"];
    fmt::print("blocked {} ({}) for {}: {}\n", b.value("prefix", ""), b.value("action", ""),
               span_text(b.value("remaining_s", int64_t{0})), b.value("reason", ""));
  } else {
    fmt::print("removed the block on {}\n", reply.value("removed", ""));
  }
  return 0;
}

}  // namespace strata::cli
