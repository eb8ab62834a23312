// The Prometheus text exposition of stratad's state (format 0.0.4): every counter of the one
// counter list with its help text, the processing-time and poll-interval histograms, unique
// clients per window and family, top-talker shares by rank (no per-client labels: bounded
// label sets), client-table memory, and the process's CPU and memory. Control thread only;
// the same table of metric names generates docs/metrics.md.
#pragma once

#include <string>
#include <vector>

#include "control/report.h"

namespace strata::control {

struct MetricsInput {
  StatsSnapshot stats;
  struct Unique {
    std::string window;  // "1m", "1h", "1d" (the current one, so far)
    std::string kind;    // "v4", "v4/24", "v6", "v6/64", "v6/48"
    double estimate = 0;
  };
  std::vector<Unique> unique;
  std::vector<Unique> ke_unique;  // the same for NTS-KE clients (empty without NTS-KE)
  struct TopShare {
    std::string window;  // "1m", "1h", "1d" (current)
    std::vector<double> shares;  // the largest talkers' shares of requests, largest first
  };
  std::vector<TopShare> top;
};

std::string metrics_text(const MetricsInput& input);

// docs/metrics.md, from the same names and help texts.
std::string metrics_markdown();

// The histogram boundaries exposed (seconds).
const std::vector<double>& processing_time_buckets();
const std::vector<double>& poll_interval_buckets();
const std::vector<double>& nts_ke_buckets();

}  // namespace strata::control
