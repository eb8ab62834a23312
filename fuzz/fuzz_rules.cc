// Fuzz target: access rules text -> parse -> compile -> lookups. Every lookup must agree
// with a direct reading of the rules (for each field, the longest matching prefix that says
// it), and no input may crash the parser or the compiler.
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "policy/policy.h"
#include "policy/reference.h"

using namespace strata;


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const policy::ParsedRules parsed = policy::parse_rules_text(text, "fuzz");
  for (const auto& e : parsed.errors) STRATA_FUZZ_CHECK(e.line >= 1 && !e.reason.empty());
  std::vector<policy::RuleError> errors;
  const policy::Policy p = policy::Policy::compile(parsed.rules, {true}, errors);
  if (!errors.empty()) return 0;  // duplicates
  // Probe every rule's first address, its last and their neighbours.
  for (const auto& r : parsed.rules) {
    base::IpAddress a = r.prefix.address;
    for (int k = 0; k < 3; ++k) {
      STRATA_FUZZ_CHECK(p.lookup(a) == policy::reference_lookup(parsed.rules, a, true));
      // The next address (wrapping), then one in the middle of the prefix.
      const size_t n = a.family == base::Family::kV4 ? 4 : 16;
      for (size_t i = n; i-- > 0;)
        if (++a.bytes[i] != 0) break;
      if (k == 1 && r.prefix.bits < static_cast<int>(8 * n)) {
        a = r.prefix.address;
        a.bytes[static_cast<size_t>(r.prefix.bits / 8)] ^= static_cast<uint8_t>(0x80u >> (r.prefix.bits % 8));
      }
    }
  }
  return 0;
}
