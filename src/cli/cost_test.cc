// Unit tests of `strata cost`'s arithmetic: tiers and allowances, periods, sysstats parsing
// (NTPsec's and ntp.org's ntpq), bytes per packet, and the shipped prices file.
#include "cli/cost.h"

#include <gtest/gtest.h>

#include <cmath>

namespace strata::cli {
namespace {

TEST(Cost, TiersAfterTheFreeAllowance) {
  Provider aws{"aws", "", "", "out", 100, {{10240, 0.09}, {51200, 0.085}, {153600, 0.07}, {INFINITY, 0.05}}};
  Cost c = tiered_cost(aws, 50);
  EXPECT_EQ(c.usd, 0);
  EXPECT_EQ(c.free_gib, 50);
  c = tiered_cost(aws, 1100);  // 1000 GiB billed, all in the first band
  EXPECT_NEAR(c.usd, 90.0, 1e-9);
  // 200,100 GiB: 100 free; 10,240 x 0.09 + 40,960 x 0.085 + 102,400 x 0.07 + 46,400 x 0.05.
  c = tiered_cost(aws, 200100);
  ASSERT_EQ(c.lines.size(), 4u);
  EXPECT_NEAR(c.usd, 10240 * 0.09 + 40960 * 0.085 + 102400 * 0.07 + 46400 * 0.05, 1e-6);
  EXPECT_NEAR(c.lines[3].gib, 46400, 1e-9);
}

TEST(Cost, PeriodsInEveryNtpqFormat) {
  EXPECT_EQ(*parse_period("93784"), 93784);
  EXPECT_EQ(*parse_period("02:03:04"), 7384);
  EXPECT_EQ(*parse_period("1D 02:03:04"), 86400 + 7384);
  EXPECT_EQ(*parse_period(" 12D 00:00:01 "), 12 * 86400 + 1);
  EXPECT_EQ(*parse_period("999999999:00:00"), 999999999.0 * 3600);  // no int overflow
  EXPECT_FALSE(parse_period("0D 2222222222222222:00:00"));  // more hours than it reads
  EXPECT_FALSE(parse_period("soon"));
  EXPECT_FALSE(parse_period("1D x"));
}

TEST(Cost, SysstatsFromBothNtpqs) {
  // NTPsec 1.2.2: two columns (since reset, since start) and rates.
  const char* ntpsec =
      "uptime:                     1D 00:00:00\n"
      "control requests:                  2\n"
      "sysstats reset:             02:00:00      1D 00:00:00\n"
      "packets received:              72000       864000       10.0p/s        10.0p/s\n"
      "current version:               70000       800000\n"
      "bad length or format:            100         1000\n"
      "authentication failed:            50          600\n"
      "declined:                         10          100\n"
      "restricted:                     1000        10000\n"
      "rate limited:                   2000        20000\n"
      "KoD responses:                   300         3000\n"
      "processed for time:            68840       832300\n";
  std::string error;
  auto s = parse_sysstats(ntpsec, error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->seconds, 7200);  // since the reset: the counts' own period
  EXPECT_EQ(s->received, 72000);
  EXPECT_EQ(s->rate_limited, 2000);
  EXPECT_EQ(s->kod_sent, 300);
  // ntp.org 4.2.8: seconds, one column.
  const char* ntporg =
      "uptime:                 86400\n"
      "sysstats reset:         3600\n"
      "packets received:       36000\n"
      "current version:        30000\n"
      "older version:          6000\n"
      "bad length or format:   10\n"
      "authentication failed:  0\n"
      "declined:               0\n"
      "restricted:             0\n"
      "rate limited:           90\n"
      "KoD responses:          9\n"
      "processed for time:     35900\n";
  s = parse_sysstats(ntporg, error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->seconds, 3600);
  EXPECT_EQ(s->received, 36000);
  EXPECT_FALSE(parse_sysstats("nothing here\n", error));
  EXPECT_FALSE(parse_sysstats("uptime: 10\npackets received: many\n", error));
  EXPECT_NE(error.find("not a count"), std::string::npos);
}

// Found by the security review (issue 12, finding 11): nan, inf and negative values passed.
TEST(Cost, SysstatsRefusesImplausibleNumbers) {
  std::string error;
  for (const char* bad : {"uptime: nan\npackets received: 5\n", "uptime: -5\npackets received: 5\n",
                          "uptime: inf\npackets received: 5\n", "uptime: 10\npackets received: nan\n",
                          "uptime: 10\npackets received: -3\n", "uptime: 10\npackets received: 1e400\n",
                          "uptime: 10\npackets received: 5\nKoD responses: inf\n",
                          "uptime: 00:99:00\npackets received: 5\n"}) {
    error.clear();
    EXPECT_FALSE(parse_sysstats(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  EXPECT_FALSE(parse_period("nan"));
  EXPECT_FALSE(parse_period("-1"));
  EXPECT_TRUE(parse_sysstats("uptime: 10\npackets received: 5\n", error));
}

TEST(Cost, BytesPerMonth) {
  Traffic t;
  t.in_pps = 1000;
  t.out_pps = 1000;
  // 1000 packets/s x 76 octets x 30.436875 days / 2^30.
  EXPECT_NEAR(t.out_gib_per_month(), 1000 * 76 * 2629746.0 / 1073741824.0, 1e-9);
  t.v6_share = 0.5;
  t.l2 = true;
  EXPECT_NEAR(t.out_bytes_per_packet(), 86 + 14, 1e-12);
  t.out_bytes_per_s = 90000;  // measured
  EXPECT_NEAR(t.out_gib_per_month(), (90000 + 14 * 1000) * 2629746.0 / 1073741824.0, 1e-6);
}

TEST(Cost, ShippedPricesParseAndBrokenOnesAreRefused) {
  std::vector<std::string> errors;
  const auto p = parse_prices(builtin_prices(), "prices.toml", errors);
  ASSERT_TRUE(p) << errors[0];
  EXPECT_FALSE(p->date.empty());
  std::vector<std::string> names;
  for (const auto& pr : p->providers) names.push_back(pr.name);
  for (const char* n : {"aws", "gcp", "azure", "digitalocean", "hetzner", "unmetered"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  errors.clear();
  EXPECT_FALSE(parse_prices("[providers.x]\ntiers = [[10, 0.1], [5, 0.2]]\n", "bad.toml", errors));
  ASSERT_EQ(errors.size(), 2u);  // bands must grow; the last must be up to inf
  EXPECT_EQ(errors[0].rfind("bad.toml:1: providers.x: ", 0), 0u) << errors[0];
  errors.clear();
  EXPECT_FALSE(parse_prices("date = \n", "syntax.toml", errors));
  EXPECT_EQ(errors[0].rfind("syntax.toml:1: ", 0), 0u) << errors[0];
}

}  // namespace
}  // namespace strata::cli

namespace strata::cli {
namespace {

TEST(Cost, NtsPacketsAndWhatTheyAdd) {
  Traffic t;
  t.in_pps = t.out_pps = 1000;
  t.nts_share = 0.25;
  EXPECT_DOUBLE_EQ(t.in_bytes_per_packet(), 76 + 0.25 * 180);
  EXPECT_DOUBLE_EQ(t.without_nts().in_bytes_per_packet(), 76);
  // Measured: 100 of the 1000 replies/s are NTS replies of 256 octets; as plain NTP they
  // would be 76.
  Traffic m;
  m.in_pps = m.out_pps = 1000;
  m.out_bytes_per_s = 900 * 76 + 100 * 256;
  m.in_bytes_per_s = *m.out_bytes_per_s;
  m.nts_in_pps = m.nts_out_pps = 100;
  m.nts_in_bytes_per_s = m.nts_out_bytes_per_s = 100 * 256;
  EXPECT_TRUE(m.has_nts());
  EXPECT_DOUBLE_EQ(*m.without_nts().out_bytes_per_s, 1000 * 76);
  EXPECT_FALSE(m.without_nts().has_nts());
  EXPECT_NEAR(m.out_gib_per_month() / m.without_nts().out_gib_per_month(), (900.0 * 76 + 100 * 256) / 76000, 1e-12);
}

}  // namespace
}  // namespace strata::cli
