// Tests of the Prometheus exposition: every counter with HELP and TYPE, histograms cumulative
// and ending at +Inf = count, bounded labels. (The real Prometheus and promtool check it in
// tests/system/test_prometheus.py.)
#include "control/metrics.h"

#include <gtest/gtest.h>

namespace strata::control {
namespace {

TEST(Metrics, CountersHistogramsAndGauges) {
  MetricsInput in;
  in.stats.counters[stats::index(stats::Counter::received)] = 12345;
  in.stats.counters[stats::index(stats::Counter::kod_sent)] = 7;
  stats::Histogram h;
  for (uint64_t ns : {500, 1500, 30000, 30000, 2000000}) h.add(ns);
  h.add_to(in.stats.processing_ns);
  in.unique.push_back({"1m", "v4", 1000});
  in.top.push_back({"1h", {0.5, 0.25}});
  const std::string t = metrics_text(in);
  EXPECT_NE(t.find("# HELP strata_received_total Datagrams received"), std::string::npos);
  EXPECT_NE(t.find("# TYPE strata_received_total counter\nstrata_received_total 12345\n"), std::string::npos);
  EXPECT_NE(t.find("strata_kod_sent_total 7\n"), std::string::npos);
  for (const auto& c : stats::kCounterInfo)
    EXPECT_NE(t.find("# TYPE strata_" + std::string(c.name) + "_total counter"), std::string::npos) << c.name;
  EXPECT_NE(t.find("strata_processing_time_seconds_bucket{le=\"1e-06\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("strata_processing_time_seconds_bucket{le=\"5e-05\"} 4\n"), std::string::npos);
  EXPECT_NE(t.find("strata_processing_time_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos);
  EXPECT_NE(t.find("strata_processing_time_seconds_count 5\n"), std::string::npos);
  EXPECT_NE(t.find("strata_unique_clients{window=\"1m\",kind=\"v4\"} 1000\n"), std::string::npos);
  EXPECT_NE(t.find("strata_top_talker_share{window=\"1h\",rank=\"2\"} 0.25\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE process_resident_memory_bytes gauge"), std::string::npos);
  // Every sample line belongs to a family declared just before.
  EXPECT_EQ(t.find("\n\n"), std::string::npos);
}

TEST(Metrics, MarkdownListsEveryMetric) {
  const std::string md = metrics_markdown();
  for (const auto& c : stats::kCounterInfo)
    EXPECT_NE(md.find("`strata_" + std::string(c.name) + "_total`"), std::string::npos);
  EXPECT_NE(md.find("`strata_unique_clients` | gauge"), std::string::npos);
}

}  // namespace
}  // namespace strata::control
