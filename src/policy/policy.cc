// Access rules (see policy.h).
#include "policy/policy.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/text.h"

namespace strata::policy {

namespace {

using U128 = unsigned __int128;

uint32_t v4_key(const base::IpAddress& a) { return a.v4_host_order(); }

U128 v6_key(const base::IpAddress& a) {
  U128 k = 0;
  for (uint8_t b : a.bytes) k = k << 8 | b;
  return k;
}

template <class U>
U range_end(U start, int bits, int width) {
  if (bits == 0) return ~U{0};
  const int host = width - bits;
  if (host == 0) return start;
  return start | ((U{1} << host) - 1);
}

}  // namespace

std::string RuleError::to_string() const {
  return line > 0 ? fmt::format("{}:{}: {}", file, line, reason) : fmt::format("{}: {}", file, reason);
}

std::string parse_actions(std::string_view text, Rule& rule) {
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == ',')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != '\t' && text[j] != ',') ++j;
    if (j == i) break;
    const std::string_view word = text.substr(i, j - i);
    i = j;
    any = true;
    auto set_access = [&](Access a) -> std::string {
      if (rule.access && *rule.access != a) return "allow, ignore and deny exclude each other";
      rule.access = a;
      return "";
    };
    std::string e;
    if (word == "allow") e = set_access(Access::kAllow);
    else if (word == "ignore") e = set_access(Access::kIgnore);
    else if (word == "deny") e = set_access(Access::kDeny);
    else if (word == "limited" || word == "nolimit") {
      const bool v = word == "limited";
      if (rule.limited && *rule.limited != v) e = "limited and nolimit exclude each other";
      rule.limited = v;
    } else if (word == "query" || word == "noquery") {
      const bool v = word == "query";
      if (rule.query && *rule.query != v) e = "query and noquery exclude each other";
      rule.query = v;
    } else {
      e = fmt::format("unknown action '{}' (expected allow, ignore, deny, limited, nolimit, "
                      "query or noquery)",
                      word);
    }
    if (!e.empty()) return e;
  }
  if (!any) return "no action given";
  return "";
}

ParsedRules parse_rules_text(std::string_view text, const std::string& name) {
  ParsedRules out;
  base::for_each_content_line(text, [&](int line_no, std::string_view line) {
    const size_t space = line.find_first_of(" \t");
    Rule r;
    r.file = name;
    r.line = line_no;
    const std::string_view prefix = line.substr(0, space);
    const auto cidr = base::Cidr::parse(prefix);
    if (!cidr) {
      out.errors.push_back({name, line_no, fmt::format("'{}' is not an address or prefix", prefix)});
    } else if (space == std::string_view::npos) {
      out.errors.push_back({name, line_no, fmt::format("no action after '{}'", prefix)});
    } else if (const std::string e = parse_actions(line.substr(space), r); !e.empty()) {
      out.errors.push_back({name, line_no, e});
    } else {
      r.prefix = *cidr;
      const auto written = base::IpAddress::parse(prefix.substr(0, prefix.find('/')));
      if (written && !(*written == cidr->address))
        out.warnings.push_back({name, line_no, fmt::format("'{}' has host bits set: it is {}", prefix,
                                                           cidr->to_string())});
      out.rules.push_back(std::move(r));
    }
  });
  return out;
}

namespace {

// Flattens one family's prefixes into sorted ranges with the index of their said verdict.
template <class U>
struct Flattener {
  struct Item {
    U start;
    U end;
    int bits;
    size_t rule;
  };
  struct Open {
    U end;
    uint8_t id;
  };

  std::vector<U>& starts;
  std::vector<uint8_t>& ids;

  void emit(U from, uint8_t id) {
    if (!starts.empty() && starts.back() == from) {
      ids.back() = id;
      if (starts.size() >= 2 && ids[ids.size() - 2] == id) {
        starts.pop_back();
        ids.pop_back();
      }
      return;
    }
    if (!ids.empty() && ids.back() == id) return;
    starts.push_back(from);
    ids.push_back(id);
  }

  template <class Intern, class Resolve>
  void run(std::vector<Item>& items, Intern intern, Resolve resolve) {
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
      return a.start != b.start ? a.start < b.start : a.bits < b.bits;
    });
    std::vector<Open> stack;
    emit(U{0}, 0);
    auto close = [&](const Open& top) {
      if (top.end != ~U{0}) emit(top.end + 1, stack.empty() ? uint8_t{0} : stack.back().id);
    };
    for (const Item& it : items) {
      while (!stack.empty() && stack.back().end < it.start) {
        const Open top = stack.back();
        stack.pop_back();
        close(top);
      }
      const uint8_t id = intern(resolve(it.rule, stack.empty() ? uint8_t{0} : stack.back().id));
      emit(it.start, id);
      stack.push_back({it.end, id});
    }
    while (!stack.empty()) {
      const Open top = stack.back();
      stack.pop_back();
      close(top);
    }
  }
};

}  // namespace

Policy Policy::compile(const std::vector<Rule>& rules, const Defaults& defaults,
                       std::vector<RuleError>& errors) {
  Policy p;
  p.defaults_ = defaults;
  p.rule_count_ = rules.size();
  p.said_.push_back({});
  auto intern = [&](const Said& s) -> uint8_t {
    for (size_t i = 0; i < p.said_.size(); ++i)
      if (p.said_[i] == s) return static_cast<uint8_t>(i);
    p.said_.push_back(s);
    return static_cast<uint8_t>(p.said_.size() - 1);
  };
  // A rule says what it says; the rest comes from the enclosing range's verdict.
  auto resolve = [&](size_t rule, uint8_t parent) {
    const Rule& r = rules[rule];
    Said s = p.said_[parent];
    if (r.access) s.access = r.access;
    if (r.limited) s.limited = r.limited;
    if (r.query) s.query = r.query;
    return s;
  };

  std::vector<Flattener<uint32_t>::Item> v4;
  std::vector<Flattener<U128>::Item> v6;
  for (size_t i = 0; i < rules.size(); ++i) {
    const base::Cidr& c = rules[i].prefix;
    if (c.address.family == base::Family::kV4) {
      const uint32_t start = v4_key(c.address);
      v4.push_back({start, range_end<uint32_t>(start, c.bits, 32), c.bits, i});
    } else {
      const U128 start = v6_key(c.address);
      v6.push_back({start, range_end<U128>(start, c.bits, 128), c.bits, i});
    }
  }
  // Duplicates: the same prefix twice is a mistake, whatever the actions.
  auto check_duplicates = [&](auto& items) {
    auto sorted = items;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return a.start != b.start ? a.start < b.start : (a.bits != b.bits ? a.bits < b.bits : a.rule < b.rule);
    });
    for (size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i].start == sorted[i - 1].start && sorted[i].bits == sorted[i - 1].bits) {
        const Rule& dup = rules[sorted[i].rule];
        const Rule& first = rules[sorted[i - 1].rule];
        errors.push_back({dup.file, dup.line,
                          fmt::format("{} is already given at {}:{}", dup.prefix.to_string(),
                                      first.file, first.line)});
      }
  };
  check_duplicates(v4);
  check_duplicates(v6);

  Flattener<uint32_t>{p.v4_starts_, p.v4_verdict_}.run(
      v4, [&](const Said& s) { return intern(s); }, resolve);
  Flattener<U128>{p.v6_starts_, p.v6_verdict_}.run(
      v6, [&](const Said& s) { return intern(s); }, resolve);
  return p;
}

Verdict Policy::lookup(const base::IpAddress& a) const {
  uint8_t id = 0;
  if (a.family == base::Family::kV4) {
    if (!v4_starts_.empty()) {
      const auto it = std::upper_bound(v4_starts_.begin(), v4_starts_.end(), v4_key(a));
      id = v4_verdict_[static_cast<size_t>(it - v4_starts_.begin()) - 1];
    }
  } else if (!v6_starts_.empty()) {
    const auto it = std::upper_bound(v6_starts_.begin(), v6_starts_.end(), v6_key(a));
    id = v6_verdict_[static_cast<size_t>(it - v6_starts_.begin()) - 1];
  }
  const Said& s = said_.empty() ? Said{} : said_[id];
  Verdict v;
  v.access = s.access.value_or(Access::kAllow);
  v.limited = s.limited.value_or(defaults_.limited);
  v.query = s.query.value_or(a.is_loopback());
  return v;
}

}  // namespace strata::policy
