// Access rules by prefix, compiled for fast lookup. Each rule names an IPv4 or IPv6 prefix
// and what to do with its sources: serve (`allow`), drop silently (`ignore`), refuse with a
// paced KoD DENY (`deny`), apply or skip the rate limiter (`limited`, `nolimit`), and answer
// or refuse control queries (`query`, `noquery`). The most specific prefix wins; a field a
// rule leaves unsaid comes from the next less specific rule that says it, then from the
// defaults (allow; limited when [ratelimit] is enabled; queries from loopback only).
//
// Compiled form: the prefixes are flattened into sorted, non-overlapping address ranges, one
// resolved verdict per range, so a lookup is one binary search whatever the nesting, about
// 17 steps for 100,000 rules. Immutable once built: a reload builds a new one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/net.h"

namespace strata::policy {

enum class Access : uint8_t { kAllow, kIgnore, kDeny };

struct Verdict {
  Access access = Access::kAllow;
  bool limited = true;  // the rate limiter applies
  bool query = false;   // control (mode 6) queries are answered
  friend bool operator==(const Verdict&, const Verdict&) = default;
};

struct Rule {
  base::Cidr prefix;
  std::optional<Access> access;
  std::optional<bool> limited;
  std::optional<bool> query;
  std::string file;  // where it was written, for errors
  int line = 0;
};

struct RuleError {
  std::string file;
  int line = 0;
  std::string reason;
  std::string to_string() const;
};

// Parses the actions of a rule ("deny", "nolimit noquery", ...) into `rule`. Returns an
// empty string, or the reason the text is wrong.
std::string parse_actions(std::string_view text, Rule& rule);

// Parses a rules file: one rule per line, "PREFIX ACTION...", '#' starts a comment. Errors
// name the file and line.
struct ParsedRules {
  std::vector<Rule> rules;
  std::vector<RuleError> errors;
  // Accepted but probably not meant: a prefix with host bits set ("10.1.2.0/2" is 0.0.0.0/2).
  std::vector<RuleError> warnings;
};
ParsedRules parse_rules_text(std::string_view text, const std::string& name);

class Policy {
 public:
  // Defaults for addresses no rule covers (query is always true for loopback sources).
  struct Defaults {
    bool limited = true;
  };

  // Compiles rules; duplicates of one prefix are errors naming both places.
  static Policy compile(const std::vector<Rule>& rules, const Defaults& defaults,
                        std::vector<RuleError>& errors);
  Policy() = default;

  Verdict lookup(const base::IpAddress& a) const;
  size_t rule_count() const { return rule_count_; }
  size_t range_count() const { return v4_starts_.size() + v6_starts_.size(); }

 private:
  size_t rule_count_ = 0;
  Defaults defaults_;
  // Sorted range starts and the verdict index of each range (index 0: the defaults).
  std::vector<uint32_t> v4_starts_;
  std::vector<uint8_t> v4_verdict_;
  std::vector<unsigned __int128> v6_starts_;
  std::vector<uint8_t> v6_verdict_;
  // A range's verdict as the rules say it; what they leave unsaid comes from the defaults at
  // lookup (the loopback test needs the address). At most 4 x 3 x 3 distinct ones.
  struct Said {
    std::optional<Access> access;
    std::optional<bool> limited;
    std::optional<bool> query;
    friend bool operator==(const Said&, const Said&) = default;
  };
  std::vector<Said> said_;  // index 0: nothing said (no rule covers the range)
};

}  // namespace strata::policy
