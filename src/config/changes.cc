// What a reload changes (see changes.h).
#include "config/changes.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace strata::config {

namespace {

std::string number(double v) { return fmt::format("{}", v); }

const char* on_off(bool b) { return b ? "on" : "off"; }

// Rules keyed by prefix (a prefix is given once per configuration).
std::map<std::string, std::string> rules_by_prefix(const Config& c) {
  std::map<std::string, std::string> out;
  for (const auto& r : c.access.rules) out[r.prefix.to_string()] = rule_text(r);
  return out;
}

void compare_limits(const clients::LimitParams& a, const clients::LimitParams& b,
                    std::vector<std::string>& out) {
  if (a.enabled != b.enabled) out.push_back(fmt::format("[ratelimit] enabled {} -> {}", on_off(a.enabled), on_off(b.enabled)));
  if (a.kod != b.kod) out.push_back(fmt::format("[ratelimit] kod {} -> {}", on_off(a.kod), on_off(b.kod)));
  const std::pair<const char*, double clients::LimitParams::*> fields[] = {
      {"interval", &clients::LimitParams::interval_s},
      {"burst", &clients::LimitParams::burst},
      {"min_spacing", &clients::LimitParams::min_spacing_s},
      {"leak", &clients::LimitParams::leak},
      {"kod_interval", &clients::LimitParams::kod_interval_s},
      {"flood_rate", &clients::LimitParams::flood_rate},
      {"score_decay", &clients::LimitParams::score_decay_s},
  };
  for (const auto& [name, field] : fields)
    if (a.*field != b.*field)
      out.push_back(fmt::format("[ratelimit] {} {} -> {}", name, number(a.*field), number(b.*field)));
}

void compare_keys(const AuthConfig& a, const AuthConfig& b, std::vector<std::string>& out) {
  std::map<uint32_t, const auth::Key*> before, after;
  for (const auto& k : a.keys) before[k.id] = &k;
  for (const auto& k : b.keys) after[k.id] = &k;
  for (const auto& [id, k] : after) {
    const auto it = before.find(id);
    if (it == before.end()) {
      out.push_back(fmt::format("key added: {}{}", id, k->trusted ? "" : " (not trusted)"));
      continue;
    }
    const auth::Key& o = *it->second;
    if (o.algorithm != k->algorithm || o.secret_length != k->secret_length ||
        !std::equal(o.secret.begin(), o.secret.begin() + o.secret_length, k->secret.begin()))
      out.push_back(fmt::format("key changed: {} (algorithm or secret)", id));
    if (o.trusted != k->trusted)
      out.push_back(fmt::format("key {}: {}", id, k->trusted ? "now trusted" : "no longer trusted"));
  }
  for (const auto& [id, k] : before)
    if (!after.count(id)) out.push_back(fmt::format("key removed: {}", id));
  if (a.keys_file != b.keys_file)
    out.push_back(fmt::format("[auth] keys \"{}\" -> \"{}\"", a.keys_file, b.keys_file));
  if (a.bad_mac != b.bad_mac)
    out.push_back(fmt::format("[auth] bad_mac {} -> {}", a.bad_mac == auth::BadMac::kDrop ? "drop" : "crypto-nak",
                              b.bad_mac == auth::BadMac::kDrop ? "drop" : "crypto-nak"));
  if (a.control_key != b.control_key)
    out.push_back(fmt::format("[auth] control_key {} -> {}", a.control_key, b.control_key));
}

}  // namespace

std::string rule_text(const policy::Rule& r) {
  std::string s = r.prefix.to_string();
  if (r.access) {
    switch (*r.access) {
      case policy::Access::kAllow: s += " allow"; break;
      case policy::Access::kIgnore: s += " ignore"; break;
      case policy::Access::kDeny: s += " deny"; break;
    }
  }
  if (r.limited) s += *r.limited ? " limited" : " nolimit";
  if (r.query) s += *r.query ? " query" : " noquery";
  return s;
}

std::vector<std::string> reload_changes(const Config& before, const Config& after) {
  std::vector<std::string> out;
  const auto a = rules_by_prefix(before), b = rules_by_prefix(after);
  size_t added = 0, changed = 0, removed = 0;
  const auto note = [&](std::string line) {
    if (added + changed + removed <= kMaxRuleLines) out.push_back(std::move(line));
  };
  for (const auto& [prefix, text] : b) {
    const auto it = a.find(prefix);
    if (it == a.end()) {
      ++added;
      note("rule added: " + text);
    } else if (it->second != text) {
      ++changed;
      note("rule changed: " + it->second + " -> " + text);
    }
  }
  for (const auto& [prefix, text] : a) {
    if (!b.count(prefix)) {
      ++removed;
      note("rule removed: " + text);
    }
  }
  if (added + changed + removed > kMaxRuleLines)
    out.push_back(fmt::format("and {} more rule changes ({} added, {} changed, {} removed in all)",
                              added + changed + removed - kMaxRuleLines, added, changed, removed));
  compare_limits(before.ratelimit, after.ratelimit, out);
  compare_keys(before.auth, after.auth, out);
  return out;
}

}  // namespace strata::config
