// Builds the control API's "stats" reply from the workers' counters and histograms (summed on
// read), the time state and the uptime. Control thread only.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "clock/time_state.h"
#include <optional>

#include "stats/counters.h"
#include "stats/histogram.h"

namespace strata::control {

struct StatsSnapshot {
  stats::CounterTotals counters{};
  stats::HistogramCounts processing_ns;
  stats::HistogramCounts poll_interval_ms;
  // NTS: KE exchange times (accept to response sent); the certificate's expiry and the
  // current cookie key's age, seconds (none: no NTS-KE / no NTS).
  stats::HistogramCounts nts_ke_ns;
  std::optional<double> nts_certificate_expiry_s;
  std::optional<double> nts_key_age_s;
  double uptime_s = 0;
  double since_reset_s = 0;
  unsigned workers = 0;
  clock::TimeState time;
  std::string source_error;  // last problem reaching the time source, if any
  struct Clients {
    size_t records = 0;  // client records in use, all workers
    size_t capacity = 0;
    size_t prefixes = 0;  // rate-limit prefixes in use
    size_t prefix_capacity = 0;
    size_t memory_bytes = 0;
  } clients;
  struct Interleave {  // interleaved mode's tables (clients/interleave.h), all workers
    bool enabled = false;
    size_t held = 0;
    size_t capacity = 0;
  } interleave;
};

nlohmann::json stats_json(const StatsSnapshot& snapshot, base::RealTime now);

// Quantiles and non-empty buckets of a histogram, in nanoseconds.
nlohmann::json histogram_json(const stats::HistogramCounts& h);

}  // namespace strata::control
