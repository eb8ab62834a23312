// The Prometheus text exposition of stratad's state (format 0.0.4): every counter of the one
// counter list with its help text, the processing-time and poll-interval histograms, unique
// clients per window and family, top-talker shares by rank (no per-client labels: bounded
// label sets), client-table memory, and the process's CPU and memory. Control thread only;
// the same table of metric names generates docs/metrics.md.
#pragma once

#include <optional>
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
  // With [networks]: the current hour's top networks (at most 10), largest first.
  struct TopNetwork {
    uint32_t asn = 0;  // 0: unknown
    std::string org;
    double share = 0;
  };
  std::vector<TopNetwork> networks;
  // With [cost]: what a month of the last second's outgoing traffic costs (the history's
  // cost series, USD).
  std::optional<double> cost_month_usd;
  // Dynamic blocks (policy/blocks.h).
  struct Blocks {
    uint64_t active = 0;
    uint64_t max_active = 0;
    uint64_t placed = 0;  // by rules and by hand, since start
  } blocks;
  // With [clients] state_dir: each state file's saves since start.
  struct StateFile {
    std::string file;  // "sketches", "history", "blocks"
    uint64_t saves = 0;
    uint64_t failures = 0;
    double last_save_unix = 0;  // 0: not saved yet in this run
  };
  std::vector<StateFile> state;
};

std::string metrics_text(const MetricsInput& input);

// docs/metrics.md, from the same names and help texts.
std::string metrics_markdown();

// The histogram boundaries exposed (seconds).
const std::vector<double>& processing_time_buckets();
const std::vector<double>& poll_interval_buckets();
const std::vector<double>& nts_ke_buckets();

}  // namespace strata::control
