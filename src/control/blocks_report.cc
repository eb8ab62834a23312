// The dynamic blocks over the control API (see blocks_report.h).
#include "control/blocks_report.h"

#include <algorithm>

#include <fmt/format.h>

namespace strata::control {

namespace {

nlohmann::json block_json(const policy::Block& b, int64_t now_s) {
  return {{"prefix", b.prefix.to_string()},
          {"action", policy::block_action_name(b.action)},
          {"reason", b.reason},
          {"by", b.rule.empty() ? "hand" : "rule"},
          {"rule", b.rule},
          {"hits", b.total_hits()},
          {"since", b.since_s},
          {"expires", b.expires_s},
          {"remaining_s", std::max<int64_t>(0, b.expires_s - now_s)},
          {"offence", b.offence}};
}

}  // namespace

nlohmann::json blocks_json(const policy::BlockBook::View& v, int64_t now_s, uint64_t events_lost) {
  nlohmann::json doc = {{"ok", true},        {"now", now_s},         {"enabled", v.enabled},
                        {"max_active", v.max_active}, {"placed", v.placed}, {"expired", v.expired},
                        {"removed", v.removed}, {"refused_cap", v.refused_cap}, {"events_lost", events_lost}};
  nlohmann::json& blocks = doc["blocks"] = nlohmann::json::array();
  std::vector<const policy::Block*> order;
  for (const auto& b : v.blocks) order.push_back(&b);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->since_s > b->since_s; });
  for (const auto* b : order) blocks.push_back(block_json(*b, now_s));
  nlohmann::json& warnings = doc["warnings"] = nlohmann::json::array();
  for (const auto& w : v.warnings)
    warnings.push_back({{"prefix", w.prefix.to_string()}, {"rule", w.rule}, {"rate", w.rate}, {"at", w.at_s}});
  nlohmann::json& rules = doc["rules"] = nlohmann::json::array();
  for (const auto& r : v.rules) {
    nlohmann::json exclude = nlohmann::json::array();
    for (const auto& c : r.exclude) exclude.push_back(c.to_string());
    rules.push_back({{"name", r.name}, {"v4_prefix", r.v4_prefix}, {"v6_prefix", r.v6_prefix}, {"rate", r.rate},
                     {"window_s", r.window_s}, {"warn", r.warn}, {"action", policy::block_action_name(r.action)},
                     {"duration_s", r.duration_s}, {"max_duration_s", r.max_duration_s}, {"growth", r.growth},
                     {"exclude", exclude}});
  }
  return doc;
}

nlohmann::json blocks_command(policy::BlockBook& book, const nlohmann::json& req, int64_t now_s,
                              uint64_t events_lost) {
  const auto fail = [](std::string e) { return nlohmann::json{{"ok", false}, {"error", std::move(e)}}; };
  const std::string op = req.value("op", "list");
  if (op == "list") return blocks_json(book.view(), now_s, events_lost);
  if (op != "add" && op != "remove") return fail(fmt::format("unknown op '{}' (list, add or remove)", op));
  const auto text = req.find("prefix");
  if (text == req.end() || !text->is_string()) return fail("a prefix is needed (\"192.0.2.0/24\", \"2001:db8::/32\")");
  const auto prefix = base::Cidr::parse(text->get<std::string>());
  if (!prefix) return fail(fmt::format("'{}' is not an address or prefix", text->get<std::string>()));
  if (op == "remove") {
    if (!book.remove(*prefix, now_s)) return fail(fmt::format("no block on {}", prefix->to_string()));
    return {{"ok", true}, {"changed", true}, {"removed", prefix->to_string()}};
  }
  const auto f = req.find("for");
  if (f == req.end() || !f->is_number()) return fail("\"for\" (seconds) is needed");
  const std::string action_text = req.value("action", "drop");
  const auto action = policy::parse_block_action(action_text);
  if (!action) return fail(fmt::format("action '{}': drop, kod or leak", action_text));
  if (const std::string e = book.add(*prefix, *action, f->get<double>(), req.value("reason", std::string("by hand")), now_s);
      !e.empty())
    return fail(e);
  if (const auto b = book.find(*prefix)) return {{"ok", true}, {"changed", true}, {"block", block_json(*b, now_s)}};
  return {{"ok", true}, {"changed", true}};
}

}  // namespace strata::control
