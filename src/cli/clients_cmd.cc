// `strata clients`: stratad's client table (ntpq's mrulist, sorted and filtered on the
// server side), streamed from the control socket as text, CSV or JSON.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "control/json_text.h"
#include "cli/commands.h"
#include "control/control_server.h"
#include "control/unique_report.h"

#include <fstream>

namespace strata::cli {

namespace {

// Seconds, compactly, like ntpq's lstint/avgint columns.
std::string seconds_text(double s) {
  if (s < 10) return fmt::format("{:.2f}", s);
  return fmt::format("{:.0f}", s);
}

std::string csv_field(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();  // addresses and flags: no commas or quotes
  return control::json_text(v);
}

}  // namespace

namespace {

int run_unique(const ClientsOptions& opt) {
  nlohmann::json doc;
  try {
    doc = control::request(opt.control, {{"command", "unique"}, {"registers", !opt.save_sketch.empty()}});
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata clients: {}\n", e.what());
    return 2;
  }
  doc.erase("ok");
  doc.erase("version");  // the control protocol's; the document has format_version
  if (!opt.save_sketch.empty()) {
    std::ofstream out(opt.save_sketch, std::ios::trunc);
    out << control::json_text(doc) << "\n";
    if (!out) {
      fmt::print(stderr, "strata clients: cannot write {}\n", opt.save_sketch);
      return 2;
    }
    if (!opt.count) return 0;
    for (auto& e : doc["sketches"]) e.erase("registers");
  }
  if (opt.json) {
    fmt::print("{}\n", control::json_text(doc, 2));
  } else {
    fmt::print("{}", control::sketches_table(doc));
  }
  return 0;
}

int run_kod_effect(const ClientsOptions& opt) {
  nlohmann::json r;
  try {
    r = control::request(opt.control, {{"command", "kod-effect"},
                                       {"min_age", opt.min_age},
                                       {"limit", opt.limit > 0 ? opt.limit : size_t{20}}});
  } catch (const std::exception& e) {
    fmt::print(stderr, "strata clients: {}\n", e.what());
    return 2;
  }
  r.erase("ok");
  r.erase("version");
  if (opt.json) {
    fmt::print("{}\n", control::json_text(r, 2));
    return 0;
  }
  fmt::print("clients with a first KoD RATE: {} ({} stopped, {} kept sending, {} less than {:.0f} s "
             "ago, {} evicted since, {} KoD'd on their first request)\n",
             r.value("watched", 0), r.value("stopped", 0), r.value("judged", 0), r.value("waiting", 0),
             r.value("min_age", 0.0), r.value("lost", 0), r.value("unknown_before", 0));
  fmt::print("stopped (no request since the KoD): {} = {:.1f}% of those with a rate before\n",
             r.value("stopped", 0), 100 * r.value("share_stopped", 0.0));
  fmt::print("kept sending, slowed down (rate over their active time after the KoD at least "
             "halved): {} of {} = {:.1f}%\n",
             r.value("slowed", 0), r.value("judged", 0), 100 * r.value("share_slowed", 0.0));
  fmt::print("median rate before: {:.3f}/s, after: {:.3f}/s (of those that kept sending)\n",
             r.value("median_rate_before", 0.0), r.value("median_rate_after", 0.0));
  if (!r["clients"].empty())
    fmt::print("{:<39} {:>12} {:>12} {:>10} {:>10}  {}\n", "address", "before /s", "after /s", "since s",
               "quiet s", "slowed");
  for (const auto& c : r["clients"])
    fmt::print("{:<39} {:>12.3f} {:>12.3f} {:>10.0f} {:>10.0f}  {}\n", c.value("address", ""),
               c.value("rate_before", 0.0), c.value("rate_after", 0.0), c.value("since_kod", 0.0),
               c.value("quiet_for", 0.0), c.value("slowed", false) ? "yes" : "no");
  return 0;
}

}  // namespace

int run_merge_sketches(const std::vector<std::string>& files, bool json) {
  std::vector<control::SketchEntry> all;
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) {
      fmt::print(stderr, "strata merge-sketches: cannot open {}\n", f);
      return 2;
    }
    try {
      auto entries = control::parse_sketches(nlohmann::json::parse(in));
      all.insert(all.end(), entries.begin(), entries.end());
    } catch (const std::exception& e) {
      fmt::print(stderr, "strata merge-sketches: {}: {}\n", f, e.what());
      return 2;
    }
  }
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  const nlohmann::json doc = control::sketches_json(control::merge_sketches(all), json, now_s);
  if (json) fmt::print("{}\n", control::json_text(doc));
  else fmt::print("{}", control::sketches_table(doc));
  return 0;
}

int run_clients(const ClientsOptions& opt) {
  if (opt.kod_effect) return run_kod_effect(opt);
  if (opt.count || !opt.save_sketch.empty()) return run_unique(opt);
  nlohmann::json request{{"command", "clients"}, {"sort", opt.sort}};
  if (opt.limit > 0) request["limit"] = opt.limit;
  if (opt.mincount > 0) request["mincount"] = opt.mincount;
  if (opt.limited) request["limited"] = true;
  if (opt.kod) request["kod"] = true;
  if (!opt.prefix.empty()) request["prefix"] = opt.prefix;
  if (!opt.laddr.empty()) request["laddr"] = opt.laddr;

  std::vector<std::string> columns;
  size_t rows = 0;
  std::string out;  // written in chunks: a million rows must not take a syscall each
  const auto emit = [&](bool force) {
    if (force || out.size() > (1u << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  };
  try {
    const nlohmann::json trailer = control::request_stream(
        opt.control, request,
        [&](const nlohmann::json& header) {
          columns = header.at("columns").get<std::vector<std::string>>();
          if (opt.json) {
            out += "[";
          } else if (opt.csv) {
            for (size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + columns[i];
            out += "\n";
          } else {
            fmt::format_to(std::back_inserter(out),
                           "# {} clients tracked ({} capacity), {} match, showing {}\n",
                           header.value("tracked", 0), header.value("capacity", 0),
                           header.value("matched", 0), header.value("rows", 0));
            fmt::format_to(std::back_inserter(out), "{:>8} {:>8} {:<3} {} {} {:>10} {:>8} {:>5}  {:<39} {:<39}{}\n",
                           "lstint", "avgint", "lim", "m", "v", "count", "drops", "kods",
                           "local address", "address", columns.size() > 12 ? " country network" : "");
          }
        },
        [&](std::string_view line) {
          const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
          if (!row.is_array() || row.size() != columns.size()) return;
          if (opt.json) {
            nlohmann::ordered_json obj;
            for (size_t i = 0; i < columns.size(); ++i) obj[columns[i]] = row[i];
            out += rows ? ",\n" : "\n";
            out += control::json_text(obj);
          } else if (opt.csv) {
            for (size_t i = 0; i < columns.size(); ++i) {
              if (i) out += ',';
              out += csv_field(row[i]);
            }
            out += '\n';
          } else {
            // address, local, first, last, lstint, avgint, count, mode, version, drops, kods, flags
            // With [networks]: asn, org, country after them.
            std::string network;
            if (row.size() > 14) {
              const uint32_t asn = row[12].get<uint32_t>();
              const std::string org = row[13].get<std::string>(), country = row[14].get<std::string>();
              network = fmt::format(" {:<7} {}", country.empty() ? "-" : country,
                                    asn == 0 ? std::string("-") : fmt::format("AS{}{}{}", asn, org.empty() ? "" : " ", org));
            }
            fmt::format_to(std::back_inserter(out), "{:>8} {:>8} {:<3} {} {} {:>10} {:>8} {:>5}  {:<39} {:<39}{}\n",
                           seconds_text(row[4].get<double>()), seconds_text(row[5].get<double>()),
                           row[11].get<std::string>(), row[7].get<int>(), row[8].get<int>(),
                           row[6].get<uint64_t>(), row[9].get<uint64_t>(), row[10].get<uint64_t>(),
                           row[1].get<std::string>(), row[0].get<std::string>(), network);
          }
          ++rows;
          emit(false);
        });
    (void)trailer;
  } catch (const std::exception& e) {
    emit(true);
    fmt::print(stderr, "strata clients: {}\n", e.what());
    return 2;
  }
  if (opt.json) out += rows ? "\n]\n" : "]\n";
  emit(true);
  return 0;
}

}  // namespace strata::cli
