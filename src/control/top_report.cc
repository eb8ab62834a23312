// "top" control command (see top_report.h).
#include "control/top_report.h"

#include <stdexcept>

namespace strata::control {

nlohmann::json top_json(const std::vector<const clients::TopTalkers*>& workers,
                        const nlohmann::json& r, int64_t now_s) {
  const std::string window = r.value("window", "1m");
  clients::Window w;
  if (window == "1m") w = clients::Window::kMinute;
  else if (window == "1h") w = clients::Window::kHour;
  else if (window == "1d") w = clients::Window::kDay;
  else throw std::invalid_argument("window must be 1m, 1h or 1d, not '" + window + "'");
  const std::string by = r.value("by", "requests");
  if (by != "requests" && by != "bytes")
    throw std::invalid_argument("by must be requests or bytes, not '" + by + "'");
  const bool prefix = r.value("prefix", false);
  const bool previous = r.value("previous", false);
  const int limit = r.value("limit", 20);
  if (limit < 1 || limit > 512) throw std::invalid_argument("limit must be 1..512");

  const clients::TopKind kind =
      prefix ? (by == "bytes" ? clients::TopKind::kPrefixBytes : clients::TopKind::kPrefixRequests)
             : (by == "bytes" ? clients::TopKind::kAddressBytes : clients::TopKind::kAddressRequests);
  const int64_t len = clients::window_seconds(w);
  const int64_t number = now_s / len - (previous ? 1 : 0);
  clients::SpaceSaving merged(512);
  for (const auto* t : workers) t->merge_into(w, number, kind, merged);

  const uint64_t total = merged.total();
  auto share = [&](uint64_t x) { return total ? static_cast<double>(x) / static_cast<double>(total) : 0.0; };
  nlohmann::json rows = nlohmann::json::array();
  uint64_t shown = 0;
  const auto top = merged.top();
  for (size_t i = 0; i < top.size() && i < static_cast<size_t>(limit); ++i) {
    const auto& e = top[i];
    std::string key = e.key.address().to_string();
    if (prefix) key += e.key.is_v4() ? "/24" : "/48";
    rows.push_back({{"key", key}, {"count", e.count}, {"error", e.error}, {"share", share(e.count)}});
    shown += e.count;
  }
  const uint64_t rest = total > shown ? total - shown : 0;
  return {{"ok", true},
          {"window", window},
          {"start", number * len},
          {"end", number * len + len},
          {"complete", !previous ? false : true},
          {"by", by},
          {"prefix", prefix},
          {"total", total},
          {"rows", rows},
          {"rest", {{"count", rest}, {"share", share(rest)}}},
          {"note", "counts are upper bounds; count - error is guaranteed (Space-Saving, 512 "
                   "counters per worker)"}};
}

}  // namespace strata::control
