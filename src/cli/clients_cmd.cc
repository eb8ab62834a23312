// `strata clients`: stratad's client table (ntpq's mrulist, sorted and filtered on the
// server side), streamed from the control socket as text, CSV or JSON.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "control/control_server.h"

namespace strata::cli {

namespace {

// Seconds, compactly, like ntpq's lstint/avgint columns.
std::string seconds_text(double s) {
  if (s < 10) return fmt::format("{:.2f}", s);
  return fmt::format("{:.0f}", s);
}

std::string csv_field(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();  // addresses and flags: no commas or quotes
  return v.dump();
}

}  // namespace

int run_clients(const ClientsOptions& opt) {
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
            fmt::format_to(std::back_inserter(out), "{:>8} {:>8} {:<3} {} {} {:>10} {:>8} {:>5}  {:<39} {}\n",
                           "lstint", "avgint", "lim", "m", "v", "count", "drops", "kods",
                           "local address", "address");
          }
        },
        [&](std::string_view line) {
          const nlohmann::json row = nlohmann::json::parse(line, nullptr, false);
          if (!row.is_array() || row.size() != columns.size()) return;
          if (opt.json) {
            nlohmann::ordered_json obj;
            for (size_t i = 0; i < columns.size(); ++i) obj[columns[i]] = row[i];
            out += rows ? ",\n" : "\n";
            out += obj.dump();
          } else if (opt.csv) {
            for (size_t i = 0; i < columns.size(); ++i) {
              if (i) out += ',';
              out += csv_field(row[i]);
            }
            out += '\n';
          } else {
            // address, local, first, last, lstint, avgint, count, mode, version, drops, kods, flags
            fmt::format_to(std::back_inserter(out), "{:>8} {:>8} {:<3} {} {} {:>10} {:>8} {:>5}  {:<39} {}\n",
                           seconds_text(row[4].get<double>()), seconds_text(row[5].get<double>()),
                           row[11].get<std::string>(), row[7].get<int>(), row[8].get<int>(),
                           row[6].get<uint64_t>(), row[9].get<uint64_t>(), row[10].get<uint64_t>(),
                           row[1].get<std::string>(), row[0].get<std::string>());
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
