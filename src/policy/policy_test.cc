// Tests of the access rules: parsing, most-specific-wins with inheritance, duplicates, and a
// randomised comparison of the compiled lookup against a direct reading of the rules.
#include "policy/policy.h"
#include "policy/reference.h"

#include <gtest/gtest.h>

#include <random>

namespace strata::policy {
namespace {

base::IpAddress ip(const char* t) { return *base::IpAddress::parse(t); }

Policy compile_text(const char* text, bool limited_default = true) {
  ParsedRules parsed = parse_rules_text(text, "rules");
  EXPECT_TRUE(parsed.errors.empty()) << parsed.errors[0].to_string();
  std::vector<RuleError> errors;
  Policy p = Policy::compile(parsed.rules, {limited_default}, errors);
  EXPECT_TRUE(errors.empty()) << errors[0].to_string();
  return p;
}

TEST(Policy, DefaultsWithoutRules) {
  const Policy p = compile_text("");
  EXPECT_EQ(p.lookup(ip("192.0.2.1")), (Verdict{Access::kAllow, true, false}));
  EXPECT_EQ(p.lookup(ip("127.0.0.1")), (Verdict{Access::kAllow, true, true}));
  EXPECT_EQ(p.lookup(ip("::1")), (Verdict{Access::kAllow, true, true}));
  EXPECT_EQ(compile_text("", false).lookup(ip("2001:db8::1")), (Verdict{Access::kAllow, false, false}));
}

TEST(Policy, MostSpecificWinsAndInheritsTheRest) {
  const Policy p = compile_text(R"(
# a comment
10.0.0.0/8        nolimit query
10.1.0.0/16       deny          # inherits nolimit and query
10.1.2.0/24       allow
10.1.2.3          ignore
2001:db8::/32     noquery
2001:db8:1::/48   ignore
0.0.0.0/0         limited
)");
  EXPECT_EQ(p.rule_count(), 7u);
  EXPECT_EQ(p.lookup(ip("10.9.9.9")), (Verdict{Access::kAllow, false, true}));
  EXPECT_EQ(p.lookup(ip("10.1.9.9")), (Verdict{Access::kDeny, false, true}));
  EXPECT_EQ(p.lookup(ip("10.1.2.9")), (Verdict{Access::kAllow, false, true}));
  EXPECT_EQ(p.lookup(ip("10.1.2.3")), (Verdict{Access::kIgnore, false, true}));
  EXPECT_EQ(p.lookup(ip("10.1.2.4")), (Verdict{Access::kAllow, false, true}));
  EXPECT_EQ(p.lookup(ip("10.1.3.0")), (Verdict{Access::kDeny, false, true}));
  EXPECT_EQ(p.lookup(ip("11.0.0.0")), (Verdict{Access::kAllow, true, false}));
  EXPECT_EQ(p.lookup(ip("9.255.255.255")), (Verdict{Access::kAllow, true, false}));
  EXPECT_EQ(p.lookup(ip("255.255.255.255")), (Verdict{Access::kAllow, true, false}));
  EXPECT_EQ(p.lookup(ip("127.0.0.1")), (Verdict{Access::kAllow, true, true}));  // loopback default
  EXPECT_EQ(p.lookup(ip("2001:db8:1::5")), (Verdict{Access::kIgnore, true, false}));
  EXPECT_EQ(p.lookup(ip("2001:db8:2::5")), (Verdict{Access::kAllow, true, false}));
  EXPECT_EQ(p.lookup(ip("::1")), (Verdict{Access::kAllow, true, true}));
}

TEST(Policy, ErrorsNameTheLine) {
  const ParsedRules r = parse_rules_text("10.0.0.0/8 allow\nbogus allow\n10.0.0.0/33 deny\n"
                                         "10.2.0.0/16\n10.3.0.0/16 allow deny\n10.4.0.0/16 frobnicate\n",
                                         "rules.txt");
  ASSERT_EQ(r.errors.size(), 5u);
  EXPECT_EQ(r.errors[0].to_string(), "rules.txt:2: 'bogus' is not an address or prefix");
  EXPECT_EQ(r.errors[1].to_string(), "rules.txt:3: '10.0.0.0/33' is not an address or prefix");
  EXPECT_EQ(r.errors[2].to_string(), "rules.txt:4: no action after '10.2.0.0/16'");
  EXPECT_EQ(r.errors[3].to_string(), "rules.txt:5: allow, ignore and deny exclude each other");
  EXPECT_EQ(r.errors[4].to_string().rfind("rules.txt:6: unknown action 'frobnicate'", 0), 0u);
  EXPECT_EQ(r.rules.size(), 1u);

  const ParsedRules d = parse_rules_text("192.0.2.0/24 deny\n192.0.2.7/24 allow\n", "x");
  std::vector<RuleError> errors;
  Policy::compile(d.rules, {}, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), "x:2: 192.0.2.0/24 is already given at x:1");
}

TEST(Policy, CompiledLookupMatchesTheRulesExactly) {
  std::mt19937_64 rng(2026);
  for (int round = 0; round < 20; ++round) {
    std::vector<Rule> rules;
    std::vector<std::string> seen;
    for (int i = 0; i < 300; ++i) {
      Rule r;
      base::IpAddress a;
      const bool v4 = rng() % 3 != 0;
      a.family = v4 ? base::Family::kV4 : base::Family::kV6;
      // Few distinct high bits, so prefixes nest often.
      const uint64_t x = rng();
      if (v4) {
        a = base::IpAddress::v4(static_cast<uint32_t>(0x0a000000u | (x & 0x0303ffu)));
      } else {
        a.bytes = {0x20, 0x01, 0x0d, 0xb8, static_cast<uint8_t>(x & 3), static_cast<uint8_t>(x >> 8 & 3)};
        a.bytes[15] = static_cast<uint8_t>(x >> 16);
      }
      const int max_bits = v4 ? 32 : 128;
      const int bits = static_cast<int>(rng() % (max_bits + 1));
      r.prefix = *base::Cidr::parse(a.to_string() + "/" + std::to_string(bits));
      if (std::find(seen.begin(), seen.end(), r.prefix.to_string()) != seen.end()) continue;
      seen.push_back(r.prefix.to_string());
      const uint64_t f = rng();
      if (f % 4 != 3) r.access = static_cast<Access>(f % 4);
      if (f / 4 % 3 != 2) r.limited = f / 4 % 3 == 0;
      if (f / 12 % 3 != 2) r.query = f / 12 % 3 == 0;
      if (!r.access && !r.limited && !r.query) r.access = Access::kAllow;
      r.file = "r";
      r.line = i + 1;
      rules.push_back(r);
    }
    std::vector<RuleError> errors;
    const Policy p = Policy::compile(rules, {round % 2 == 0}, errors);
    ASSERT_TRUE(errors.empty()) << errors[0].to_string();
    for (int k = 0; k < 3000; ++k) {
      base::IpAddress a;
      const uint64_t x = rng();
      if (k % 3 != 0) {
        a = base::IpAddress::v4(static_cast<uint32_t>(0x0a000000u | (x & 0x0303ffu)) ^
                                static_cast<uint32_t>((x >> 32) % 7 == 0 ? (x >> 40) : 0));
      } else {
        a.family = base::Family::kV6;
        a.bytes = {0x20, 0x01, 0x0d, 0xb8, static_cast<uint8_t>(x & 3), static_cast<uint8_t>(x >> 8 & 3)};
        a.bytes[15] = static_cast<uint8_t>(x >> 16);
        a.bytes[9] = static_cast<uint8_t>((x >> 32) % 5 == 0 ? x >> 40 : 0);
      }
      ASSERT_EQ(p.lookup(a), reference_lookup(rules, a, round % 2 == 0)) << a.to_string();
    }
  }
}

TEST(Policy, HundredThousandRules) {
  std::vector<Rule> rules;
  for (uint32_t i = 0; i < 100000; ++i) {
    Rule r;
    r.prefix = base::Cidr{base::IpAddress::v4(0x01000000u + (i << 8)), 24};
    r.access = i % 2 ? Access::kDeny : Access::kIgnore;
    rules.push_back(r);
  }
  std::vector<RuleError> errors;
  const Policy p = Policy::compile(rules, {}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(p.lookup(base::IpAddress::v4(0x01000000u + (7u << 8) + 9)).access, Access::kDeny);
  EXPECT_EQ(p.lookup(base::IpAddress::v4(0x01000000u + (8u << 8) + 9)).access, Access::kIgnore);
  EXPECT_EQ(p.lookup(base::IpAddress::v4(0x01000000u + (100000u << 8))).access, Access::kAllow);
  // 100,000 ranges + the default before and after them + the (empty) IPv6 default range.
  EXPECT_EQ(p.range_count(), 100003u);
}

}  // namespace
}  // namespace strata::policy
