// The history's sampler and its control command (see history_report.h).
#include "control/history_report.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace strata::control {

namespace {


uint64_t delta(const HistoryReading& a, const HistoryReading& b, stats::Counter c) {
  const uint64_t x = a.counters[stats::index(c)], y = b.counters[stats::index(c)];
  return y >= x ? y - x : 0;  // a kernel counter that went back (device reset): nothing
}

nlohmann::json points(const std::vector<float>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (const float x : v) {
    if (std::isnan(x)) out.push_back(nullptr);
    else out.push_back(static_cast<double>(x));
  }
  return out;
}

int64_t time_field(const nlohmann::json& r, const char* name, int64_t fallback, int64_t now_s) {
  if (!r.contains(name)) return fallback;
  if (!r[name].is_number()) throw std::invalid_argument(std::string(name) + " must be a number of seconds");
  const double v = r[name].get<double>();
  if (!std::isfinite(v)) throw std::invalid_argument(std::string(name) + " must be finite");
  return v <= 0 ? now_s + static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

}  // namespace

stats::Sample history_sample(const HistoryReading& a, const HistoryReading& b, double seconds,
                             const stats::Provider* provider) {
  using stats::Counter;
  using stats::Series;
  stats::Sample s = stats::unknown_sample();
  if (!(seconds > 0)) return s;
  const auto rate = [&](Counter c) { return static_cast<double>(delta(a, b, c)) / seconds; };
  const auto set = [&](Series x, double v) { s[stats::series_index(x)] = v; };
  set(Series::requests, rate(Counter::received));
  set(Series::replies, rate(Counter::responses_sent));
  set(Series::bad_format, rate(Counter::bad_format));
  set(Series::auth_failed, rate(Counter::auth_failed));
  set(Series::declined, rate(Counter::declined));
  set(Series::restricted, rate(Counter::restricted));
  set(Series::rate_limited, rate(Counter::rate_limited));
  set(Series::kod, rate(Counter::kod_sent));
  const double in4 = rate(Counter::bytes_in_v4), in6 = rate(Counter::bytes_in_v6);
  const double out4 = rate(Counter::bytes_out_v4), out6 = rate(Counter::bytes_out_v6);
  set(Series::bytes_in_v4, in4);
  set(Series::bytes_in_v6, in6);
  set(Series::bytes_out_v4, out4);
  set(Series::bytes_out_v6, out6);
  set(Series::kernel_drops, rate(Counter::rx_queue_drops) + rate(Counter::xdp_rx_dropped));
  set(Series::unique_1m, b.unique[0]);
  set(Series::unique_1h, b.unique[1]);
  set(Series::unique_1d, b.unique[2]);
  stats::HistogramCounts second;
  for (size_t i = 0; i < second.buckets.size(); ++i) {
    const uint64_t x = a.processing_ns.buckets[i], y = b.processing_ns.buckets[i];
    second.buckets[i] = y >= x ? y - x : 0;
  }
  if (second.total() > 0) {
    set(Series::processing_p50, second.quantile(0.5));
    set(Series::processing_p99, second.quantile(0.99));
  }
  set(Series::top_share, b.top_share);
  if (provider != nullptr) {
    const double billed = provider->billed == "in"     ? in4 + in6
                          : provider->billed == "both" ? in4 + in6 + out4 + out6
                                                       : out4 + out6;
    set(Series::cost_month, stats::tiered_cost(*provider, billed * stats::kMonthSeconds / stats::kGiB).usd);
  }
  return s;
}

nlohmann::json history_json(const stats::History& history, const nlohmann::json& r, int64_t now_s) {
  std::vector<size_t> series;
  const auto add = [&](const std::string& name) {
    const auto i = stats::find_series(name);
    if (!i) {
      std::string known;
      for (const auto& info : stats::kSeriesInfo) known += (known.empty() ? "" : ", ") + std::string(info.name);
      throw std::invalid_argument("no series '" + name + "' (there are " + known + ")");
    }
    series.push_back(*i);
  };
  if (r.contains("series") && r["series"].is_array()) {
    for (const auto& n : r["series"]) {
      if (!n.is_string()) throw std::invalid_argument("series must be names");
      add(n.get<std::string>());
    }
  } else if (r.contains("series") && r["series"].is_string()) {
    const std::string list = r["series"].get<std::string>();
    size_t at = 0;
    while (at <= list.size()) {
      const size_t comma = std::min(list.find(',', at), list.size());
      if (comma > at) add(list.substr(at, comma - at));
      at = comma + 1;
    }
  } else if (r.contains("series")) {
    throw std::invalid_argument("series must be a list of names");
  }
  if (series.empty())
    for (size_t i = 0; i < stats::kSeriesCount; ++i) series.push_back(i);
  stats::History::Range range;
  range.until = time_field(r, "until", now_s, now_s);
  range.since = time_field(r, "since", range.until - 3599, now_s);
  if (r.contains("step")) {
    if (!r["step"].is_number_integer()) throw std::invalid_argument("step must be 1, 60 or 3600");
    range.step = r["step"].get<int64_t>();
  }
  const auto result = history.query(series, range);
  nlohmann::json rows = nlohmann::json::array();
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& info = stats::kSeriesInfo[series[k]];
    nlohmann::json row = {{"name", info.name}, {"unit", info.unit}, {"mean", points(result.mean[k])}};
    if (result.step > 1) row["max"] = points(result.max[k]);
    rows.push_back(std::move(row));
  }
  return {{"ok", true},
          {"step", result.step},
          {"start", result.start},
          {"points", result.points},
          {"now", now_s},
          {"series", rows}};
}

}  // namespace strata::control
