// The "stats" reply (see report.h).
#include "control/report.h"

#include <cmath>

#include "clock/sources.h"

namespace strata::control {

nlohmann::json histogram_json(const stats::HistogramCounts& h) {
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < h.buckets.size(); ++i)
    if (h.buckets[i] != 0)
      buckets.push_back({stats::bucket_lower(i), stats::bucket_upper(i), h.buckets[i]});
  return {{"count", h.total()},
          {"p50", h.quantile(0.5)},
          {"p90", h.quantile(0.9)},
          {"p99", h.quantile(0.99)},
          {"p999", h.quantile(0.999)},
          {"buckets", buckets}};
}

// How the gaps between a client's requests fall around the usual polling intervals (64 s to
// 1024 s): the aggregate behaviour of the clients, without per-client labels.
nlohmann::json poll_clusters(const stats::HistogramCounts& h) {
  static constexpr std::pair<const char*, uint64_t> kEdges[] = {
      {"<2s", 2000},       {"2-16s", 16000},     {"16-64s", 64000},     {"64-128s", 128000},
      {"128-256s", 256000}, {"256-512s", 512000}, {"512-1024s", 1024000}};
  nlohmann::json out = nlohmann::json::array();
  uint64_t below = 0;
  // Bucket edges are log-linear (6.25% wide): each edge is counted at its bucket's boundary.
  for (const auto& [name, edge] : kEdges) {
    const auto n = static_cast<uint64_t>(std::llround(h.count_below(edge)));
    out.push_back({{"range", name}, {"gaps", n - below}});
    below = n;
  }
  out.push_back({{"range", ">=1024s"}, {"gaps", h.total() - below}});
  return out;
}

nlohmann::json stats_json(const StatsSnapshot& s, base::RealTime now) {
  nlohmann::json counters = nlohmann::json::object();
  for (size_t i = 0; i < stats::kCounterCount; ++i)
    counters[std::string(stats::kCounterInfo[i].name)] = s.counters[i];
  const wire::ServerInfo served = clock::server_info(s.time, now);
  nlohmann::json time = {
      {"source", clock::source_name(s.time.source)},
      {"synchronised", s.time.synchronised},
      {"leap", static_cast<int>(served.leap)},
      {"stratum", served.stratum},
      {"refid", clock::format_reference_id(served.reference_id, served.stratum)},
      {"precision", served.precision},
      {"root_delay", served.root_delay.to_seconds()},
      {"root_dispersion", served.root_dispersion.to_seconds()},
      {"age", std::chrono::duration<double>(now - s.time.as_of).count()},
      {"updates", s.time.updates},
  };
  if (!s.source_error.empty()) time["source_error"] = s.source_error;
  return {{"ok", true},
          {"uptime", s.uptime_s},
          {"since_reset", s.since_reset_s},
          {"workers", s.workers},
          {"clients",
           {{"records", s.clients.records},
            {"capacity", s.clients.capacity},
            {"prefixes", s.clients.prefixes},
            {"prefix_capacity", s.clients.prefix_capacity},
            {"memory_bytes", s.clients.memory_bytes}}},
          {"interleave",
           {{"enabled", s.interleave.enabled},
            {"held", s.interleave.held},
            {"capacity", s.interleave.capacity}}},
          {"counters", counters},
          {"processing_time_ns", histogram_json(s.processing_ns)},
          {"poll_interval_ms", histogram_json(s.poll_interval_ms)},
          {"poll_interval_clusters", poll_clusters(s.poll_interval_ms)},
          {"nts",
           {{"ke_time_ns", histogram_json(s.nts_ke_ns)},
            {"certificate_expiry_s", s.nts_certificate_expiry_s ? nlohmann::json(*s.nts_certificate_expiry_s) : nlohmann::json()},
            {"key_age_s", s.nts_key_age_s ? nlohmann::json(*s.nts_key_age_s) : nlohmann::json()}}},
          {"time", time}};
}

}  // namespace strata::control
