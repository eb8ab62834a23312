// Unique-client sketch documents (see unique_report.h).
#include "control/unique_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

namespace strata::control {

using clients::kSketchKindCount;
using clients::kSketchKinds;
using clients::Window;

namespace {

std::optional<Window> window_from(const std::string& name) {
  for (Window w : clients::kWindows)
    if (name == clients::window_name(w)) return w;
  return std::nullopt;
}

std::optional<size_t> kind_from(const std::string& name) {
  for (size_t k = 0; k < kSketchKindCount; ++k)
    if (name == kSketchKinds[k].name) return k;
  return std::nullopt;
}

}  // namespace

std::vector<SketchEntry> collect_sketches(const std::vector<const clients::UniqueCounter*>& counters,
                                          int64_t now_s) {
  std::vector<SketchEntry> out;
  for (Window w : clients::kWindows) {
    const int64_t len = clients::window_seconds(w);
    const int64_t current = now_s / len;
    for (int64_t number : {current, current - 1}) {
      for (size_t k = 0; k < kSketchKindCount; ++k) {
        SketchEntry e{w, number * len, k, std::make_shared<clients::Hll>()};
        for (const auto* c : counters) c->merge_into(w, k, number, *e.sketch);
        // Both windows always, as strata clients --count promises: an empty previous
        // window is a count of 0 (no client, or stratad was not running then).
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

nlohmann::json sketches_json(const std::vector<SketchEntry>& entries, bool with_registers,
                             int64_t now_s) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : entries) {
    const int64_t len = clients::window_seconds(e.window);
    nlohmann::json j{{"window", clients::window_name(e.window)},
                     {"start", e.start},
                     {"end", e.start + len},
                     {"complete", e.start + len <= now_s},
                     {"kind", kSketchKinds[e.kind].name},
                     {"estimate", std::round(e.sketch->estimate())}};
    if (with_registers) j["registers"] = e.sketch->to_base64();
    list.push_back(std::move(j));
  }
  return {{"format", kSketchFormat},
          {"format_version", 1},
          {"hash", "strata-splitmix-1"},
          {"precision", clients::Hll::kPrecision},
          {"now", now_s},
          {"sketches", std::move(list)}};
}

std::vector<SketchEntry> parse_sketches(const nlohmann::json& doc, std::vector<std::string>* skipped) {
  if (!doc.is_object() || doc.value("format", "") != kSketchFormat)
    throw std::runtime_error(fmt::format("not a {} document", kSketchFormat));
  if (doc.value("format_version", 0) != 1 || doc.value("precision", 0) != clients::Hll::kPrecision ||
      doc.value("hash", "") != "strata-splitmix-1")
    throw std::runtime_error("sketches of another version, precision or hash: cannot merge");
  std::vector<SketchEntry> out;
  const auto& list = doc.at("sketches");
  if (!list.is_array()) throw std::runtime_error("sketches is not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    try {
      const auto& j = list[i];
      if (!j.is_object()) throw std::runtime_error(fmt::format("sketch {}: not an object", i + 1));
      const auto w = window_from(j.value("window", ""));
      const auto k = kind_from(j.value("kind", ""));
      if (!w || !k || !j.contains("start") || !j["start"].is_number_integer())
        throw std::runtime_error(fmt::format("sketch {}: bad window, kind or start", i + 1));
      SketchEntry e{*w, j["start"].get<int64_t>(), *k, std::make_shared<clients::Hll>()};
      if (!e.sketch->from_base64(j.value("registers", "")))
        throw std::runtime_error(fmt::format("sketch {}: registers missing or malformed", i + 1));
      out.push_back(std::move(e));
    } catch (const std::exception& e) {
      if (skipped == nullptr) throw;
      skipped->push_back(e.what());
    }
  }
  return out;
}

std::vector<SketchEntry> merge_sketches(const std::vector<SketchEntry>& entries) {
  std::map<std::tuple<int, int64_t, size_t>, SketchEntry> merged;
  for (const auto& e : entries) {
    const auto key = std::make_tuple(static_cast<int>(e.window), e.start, e.kind);
    auto it = merged.find(key);
    if (it == merged.end()) {
      SketchEntry copy{e.window, e.start, e.kind, std::make_shared<clients::Hll>(*e.sketch)};
      merged.emplace(key, std::move(copy));
    } else {
      it->second.sketch->merge(*e.sketch);
    }
  }
  std::vector<SketchEntry> out;
  for (auto& [key, e] : merged) out.push_back(std::move(e));
  // Newest first within each window length, as the table shows them.
  std::stable_sort(out.begin(), out.end(), [](const SketchEntry& a, const SketchEntry& b) {
    if (a.window != b.window) return a.window < b.window;
    return a.start > b.start;
  });
  return out;
}

std::string sketches_table(const nlohmann::json& doc) {
  // Rows: (window, start); columns: kinds, then v4 + v6 addresses.
  struct Row {
    std::string window;
    int64_t start, end;
    bool complete;
    double values[kSketchKindCount];
    bool has[kSketchKindCount];
  };
  std::vector<Row> rows;
  for (const auto& j : doc.at("sketches")) {
    const std::string w = j.value("window", "");
    const int64_t start = j.value("start", int64_t{0});
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const Row& r) { return r.window == w && r.start == start; });
    if (it == rows.end()) {
      rows.push_back(Row{w, start, j.value("end", int64_t{0}), j.value("complete", false), {}, {}});
      it = rows.end() - 1;
    }
    if (const auto k = kind_from(j.value("kind", ""))) {
      it->values[*k] = j.value("estimate", 0.0);
      it->has[*k] = true;
    }
  }
  std::string out = fmt::format("{:<6} {:<22} {:>11}", "window", "from (UTC)", "clients");
  for (const auto& k : kSketchKinds) out += fmt::format(" {:>11}", k.name);
  out += "\n";
  for (const Row& r : rows) {
    const time_t t = static_cast<time_t>(r.start);
    std::tm tm{};
    gmtime_r(&t, &tm);
    const std::string from = fmt::format("{:04}-{:02}-{:02} {:02}:{:02}{}", tm.tm_year + 1900,
                                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                         r.complete ? "" : " (now)");
    const double all = (r.has[0] ? r.values[0] : 0) + (r.has[2] ? r.values[2] : 0);
    out += fmt::format("{:<6} {:<22} {:>11.0f}", r.window, from, all);
    for (size_t k = 0; k < kSketchKindCount; ++k)
      out += r.has[k] ? fmt::format(" {:>11.0f}", r.values[k]) : fmt::format(" {:>11}", "-");
    out += "\n";
  }
  out += "clients = distinct IPv4 + IPv6 addresses; v4/24, v6/64, v6/48 = distinct prefixes. "
         "HyperLogLog estimates: standard error 0.8%.\n";
  return out;
}

}  // namespace strata::control
