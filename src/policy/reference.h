// The meaning of access rules, read directly: for each field, the longest matching prefix
// that says it, else the default. Linear in the rules: the oracle the compiled Policy is
// tested and fuzzed against (policy_test.cc, fuzz/fuzz_rules.cc), never used to serve.
#pragma once

#include <vector>

#include "policy/policy.h"

namespace strata::policy {

inline Verdict reference_lookup(const std::vector<Rule>& rules, const base::IpAddress& a,
                                bool limited_default) {
  Verdict v{Access::kAllow, limited_default, a.is_loopback()};
  int best_access = -1, best_limited = -1, best_query = -1;
  for (const Rule& r : rules) {
    if (!r.prefix.contains(a)) continue;
    if (r.access && r.prefix.bits > best_access) best_access = r.prefix.bits, v.access = *r.access;
    if (r.limited && r.prefix.bits > best_limited) best_limited = r.prefix.bits, v.limited = *r.limited;
    if (r.query && r.prefix.bits > best_query) best_query = r.prefix.bits, v.query = *r.query;
  }
  return v;
}

}  // namespace strata::policy
