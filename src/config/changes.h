// What a reload changes: the reloadable part of two configurations (access rules, rate
// limits, keys and their trust), compared line by line for the operator ("rule added:
// 192.0.2.0/24 deny", "[ratelimit] interval 8 -> 16"). Called by stratad's reload (main
// thread or control thread) and tested apart.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "config/config.h"

namespace strata::config {

// "192.0.2.0/24 deny nolimit": a rule as it would be written (prefix, then its actions).
std::string rule_text(const policy::Rule& rule);

// Rule changes listed one per line, at most this many; then one line counts the rest (a
// reload that replaces 100,000 rules must not write 200,000 lines to the log).
inline constexpr size_t kMaxRuleLines = 20;

// One line per difference, in the order rules, rate limits, keys; empty when nothing that a
// reload applies differs.
std::vector<std::string> reload_changes(const Config& before, const Config& after);

}  // namespace strata::config
