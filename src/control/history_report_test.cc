// Unit tests of the history's sampler (rates, the second's quantiles, cost) and the control
// API's "history" command (fields, defaults, refusals), and of `strata history`'s times.
#include "control/history_report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "cli/commands.h"

namespace strata::control {
namespace {

using stats::Counter;
using stats::Series;

double at(const stats::Sample& s, Series x) { return s[stats::series_index(x)]; }

TEST(HistoryReport, SampleIsWhatChangedOverTheSecond) {
  HistoryReading a, b;
  a.counters[stats::index(Counter::received)] = 1000;
  b.counters[stats::index(Counter::received)] = 1000 + 2 * 500;
  b.counters[stats::index(Counter::responses_sent)] = 2 * 480;
  b.counters[stats::index(Counter::bytes_out_v4)] = 2 * 480 * 76;
  b.counters[stats::index(Counter::rx_queue_drops)] = 4;
  b.counters[stats::index(Counter::xdp_rx_dropped)] = 6;
  for (int i = 0; i < 99; ++i) b.processing_ns.buckets[stats::bucket_index(10'000)]++;
  b.processing_ns.buckets[stats::bucket_index(1'000'000)]++;
  b.unique = {10, 20, 30};
  b.top_share = 0.25;
  const stats::Sample s = history_sample(a, b, 2.0, nullptr);
  EXPECT_EQ(at(s, Series::requests), 500);
  EXPECT_EQ(at(s, Series::replies), 480);
  EXPECT_EQ(at(s, Series::bytes_out_v4), 480 * 76);
  EXPECT_EQ(at(s, Series::kernel_drops), 5);
  EXPECT_EQ(at(s, Series::unique_1h), 20);
  EXPECT_EQ(at(s, Series::top_share), 0.25);
  EXPECT_NEAR(at(s, Series::processing_p50), 10'000, 10'000 * 0.0625);
  EXPECT_GT(at(s, Series::processing_p99), 9'000);
  EXPECT_TRUE(std::isnan(at(s, Series::cost_month))) << "no provider: no cost";
  // A second without requests has no processing time, not zero.
  const stats::Sample idle = history_sample(b, b, 1.0, nullptr);
  EXPECT_EQ(at(idle, Series::requests), 0);
  EXPECT_TRUE(std::isnan(at(idle, Series::processing_p99)));
}

TEST(HistoryReport, CostIsAMonthOfTheSecondsTraffic) {
  stats::Provider flat{"flat", "", "", "out", 0, {{INFINITY, 0.10}}};
  HistoryReading a, b;
  b.counters[stats::index(Counter::bytes_out_v4)] = 1'000'000;  // 1 MB/s out
  b.counters[stats::index(Counter::bytes_in_v4)] = 9'000'000;   // not billed ("out")
  const stats::Sample s = history_sample(a, b, 1.0, &flat);
  EXPECT_NEAR(at(s, Series::cost_month), 1e6 * stats::kMonthSeconds / stats::kGiB * 0.10, 1e-6);
  flat.free_gib = 1e9;
  EXPECT_EQ(at(history_sample(a, b, 1.0, &flat), Series::cost_month), 0);
}

TEST(HistoryReport, CommandPicksSeriesRangeAndStep) {
  stats::History h;
  const int64_t now = 1'796'083'200 + 7200;
  for (int64_t t = now - 120; t <= now; ++t) {
    stats::Sample x = stats::unknown_sample();
    x[stats::series_index(Series::requests)] = 10;
    h.record(t, x);
  }
  auto doc = history_json(h, {{"series", "requests,kod"}, {"since", -60}}, now);
  EXPECT_EQ(doc["step"], 1);
  EXPECT_EQ(doc["points"], 61);
  ASSERT_EQ(doc["series"].size(), 2u);
  EXPECT_EQ(doc["series"][0]["name"], "requests");
  EXPECT_EQ(doc["series"][0]["mean"][0], 10.0);
  EXPECT_TRUE(doc["series"][1]["mean"][0].is_null());
  EXPECT_FALSE(doc["series"][0].contains("max"));  // 1 s: the mean is the max
  doc = history_json(h, {{"series", nlohmann::json::array({"requests"})}, {"step", 60}}, now);
  EXPECT_EQ(doc["step"], 60);
  EXPECT_EQ(doc["points"], 61);  // the default range, the last hour: 60 minutes and the one begun
  EXPECT_TRUE(doc["series"][0].contains("max"));
  EXPECT_EQ(history_json(h, {}, now)["series"].size(), stats::kSeriesCount);
  EXPECT_THROW(history_json(h, {{"series", "requests,nope"}}, now), std::invalid_argument);
  EXPECT_THROW(history_json(h, {{"step", 5}}, now), std::invalid_argument);
  EXPECT_THROW(history_json(h, {{"since", "yesterday"}}, now), std::invalid_argument);
}

TEST(HistoryReport, CliTimes) {
  const int64_t now = 1'796'083'200 + 86400;
  EXPECT_EQ(cli::parse_when("1h", now), now - 3600);
  EXPECT_EQ(cli::parse_when("-30m", now), now - 1800);
  EXPECT_EQ(cli::parse_when("7d", now), now - 7 * 86400);
  EXPECT_EQ(cli::parse_when("90s", now), now - 90);
  EXPECT_EQ(cli::parse_when("1796083200", now), 1'796'083'200);
  EXPECT_EQ(cli::parse_when("2026-12-01T00:00:00Z", now), 1'796'083'200);
  EXPECT_EQ(cli::parse_when("2026-12-01 01:30", now), 1'796'083'200 + 5400);
  EXPECT_EQ(cli::parse_when("2026-12-01", now), 1'796'083'200);
  for (const char* bad : {"", "h", "1x", "yesterday", "2026-13-01", "2026-12-01T00:00:00+01", "1.5h"})
    EXPECT_FALSE(cli::parse_when(bad, now)) << bad;
}

TEST(HistoryReport, OperatingGuideListsEverySeriesAsTheCodeDoes) {
  std::ifstream in(std::string(STRATA_SOURCE_DIR) + "/docs/operating.md");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& info : stats::kSeriesInfo) {
    const std::string row = "| `" + std::string(info.name) + "` | " + std::string(info.unit) + " | " +
                            std::string(info.help) + " |";
    EXPECT_NE(text.str().find(row), std::string::npos) << "docs/operating.md lacks: " << row;
  }
}

}  // namespace
}  // namespace strata::control
