// Tests of the Prometheus exposition: every counter with HELP and TYPE, histograms cumulative
// and ending at +Inf = count, bounded labels. (The real Prometheus and promtool check it in
// tests/system/test_prometheus.py.)
#include "control/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "control/metrics_server.h"

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

// One HTTP/1.0 GET to 127.0.0.1:port; the whole reply.
std::string http_get(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

TEST(MetricsServer, ScrapesShareOneRenderingAndOtherPathsAre404) {
  MetricsServer server;
  std::atomic<int> renders{0};
  ASSERT_EQ(server.bind(base::Endpoint{base::IpAddress::v4(0x7f000001), 0}), "");
  ASSERT_NE(server.port(), 0);
  ASSERT_EQ(server.start([&] { return "strata_renders " + std::to_string(++renders) + "\n"; }), "");
  const int scrapes = 20;
  for (int i = 0; i < scrapes; ++i) {
    const std::string r = http_get(server.port(), "/metrics");
    ASSERT_EQ(r.rfind("HTTP/1.", 0), 0u) << r;
    EXPECT_NE(r.find(" 200 "), std::string::npos) << r;
    EXPECT_NE(r.find("strata_renders "), std::string::npos) << r;
  }
  // Back to back, the scrapes reuse a rendering (one per 0.2 s at most).
  EXPECT_GE(renders.load(), 1);
  EXPECT_LT(renders.load(), scrapes);
  EXPECT_NE(http_get(server.port(), "/other").find(" 404 "), std::string::npos);
  server.stop();
}

TEST(MetricsServer, ABindFailureNamesTheAddress) {
  MetricsServer first, second;
  ASSERT_EQ(first.bind(base::Endpoint{base::IpAddress::v4(0x7f000001), 0}), "");
  const std::string e = second.bind(base::Endpoint{base::IpAddress::v4(0x7f000001), first.port()});
  EXPECT_NE(e.find("metrics: cannot listen on 127.0.0.1:"), std::string::npos) << e;
  EXPECT_NE(e.find("Address already in use"), std::string::npos) << e;
}

}  // namespace
}  // namespace strata::control
