// stratad's history, fed and read: one second's sample from two readings of the counters a
// second apart (rates, the second's processing-time quantiles, unique clients, top-talker
// share, the month's cost at [cost]'s provider), and the control API's "history" command.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>

#include "stats/counters.h"
#include "stats/histogram.h"
#include "stats/history.h"
#include "stats/prices.h"

namespace strata::control {

// What the sampler reads each second.
struct HistoryReading {
  stats::CounterTotals counters{};
  stats::HistogramCounts processing_ns;
  std::array<double, 3> unique{};  // addresses, current 1m / 1h / 1d windows
  double top_share = 0;            // share of the current minute's requests of the top ten
};

// The sample of the `seconds` between two readings. `provider` null: no cost series.
stats::Sample history_sample(const HistoryReading& before, const HistoryReading& now, double seconds,
                             const stats::Provider* provider);

// Request fields: series (names, an array or "a,b"; default all), since and until (unix
// seconds; zero or negative: that many seconds before now; default the last hour and now),
// step (1, 60 or 3600; default: the finest tier that covers the range). Reply: step, start,
// points, and per series its name, unit and the points' means (and maxima when step > 1),
// null where unknown. Throws std::invalid_argument on bad fields.
nlohmann::json history_json(const stats::History& history, const nlohmann::json& request, int64_t now_s);

}  // namespace strata::control
