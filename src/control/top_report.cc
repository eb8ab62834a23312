// "top" control command (see top_report.h).
#include "control/top_report.h"

#include <algorithm>
#include <map>
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

nlohmann::json top_networks_json(const std::vector<const clients::TopTalkers*>& workers,
                                 const nlohmann::json& r, int64_t now_s, const policy::NetworkDb& networks) {
  const std::string group = r.value("group", "network");
  if (group != "network" && group != "country")
    throw std::invalid_argument("group must be network or country, not '" + group + "'");
  nlohmann::json prefixes = r;
  prefixes.erase("group");
  prefixes["prefix"] = true;
  prefixes["by"] = "requests";
  prefixes["limit"] = 512;  // every prefix the merged summary holds
  const int limit = r.value("limit", 20);
  if (limit < 1 || limit > 512) throw std::invalid_argument("limit must be 1..512");
  const nlohmann::json top = top_json(workers, prefixes, now_s);
  struct Group {
    uint64_t count = 0, error = 0;
    size_t prefixes = 0;
    policy::NetworkInfo info;
  };
  std::map<std::string, Group> groups;
  for (const auto& row : top["rows"]) {
    const std::string key = row["key"].get<std::string>();
    const auto address = base::IpAddress::parse(key.substr(0, key.find('/')));
    if (!address) continue;
    const policy::NetworkInfo info = networks.lookup(*address);
    const std::string name = group == "network" ? policy::network_name(info) : policy::country_name(info);
    Group& g = groups[name];
    g.count += row["count"].get<uint64_t>();
    g.error += row["error"].get<uint64_t>();
    ++g.prefixes;
    g.info = info;
  }
  std::vector<std::pair<std::string, Group>> sorted(groups.begin(), groups.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.count != b.second.count ? a.second.count > b.second.count : a.first < b.first;
  });
  const uint64_t total = top["total"].get<uint64_t>();
  auto share = [&](uint64_t x) { return total ? static_cast<double>(x) / static_cast<double>(total) : 0.0; };
  nlohmann::json rows = nlohmann::json::array();
  uint64_t shown = 0;
  for (size_t i = 0; i < sorted.size() && i < static_cast<size_t>(limit); ++i) {
    const auto& [name, g] = sorted[i];
    nlohmann::json row{{"key", name}, {"count", g.count}, {"error", g.error}, {"share", share(g.count)},
                       {"prefixes", g.prefixes}};
    if (group == "network") {
      row["asn"] = g.info.asn;
      row["org"] = g.info.org;
    }
    rows.push_back(std::move(row));
    shown += g.count;
  }
  const uint64_t rest = total > shown ? total - shown : 0;
  nlohmann::json out = top;
  out["group"] = group;
  out["rows"] = rows;
  out["rest"] = {{"count", rest}, {"share", share(rest)}};
  out["note"] = "the heaviest prefixes (IPv4 /24, IPv6 /48; 512 counters per worker) grouped by the " + group +
                " of each prefix's first address; counts are upper bounds; lighter prefixes are in the rest";
  return out;
}

}  // namespace strata::control
