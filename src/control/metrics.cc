// Prometheus text exposition (see metrics.h).
#include "control/metrics.h"

#include <fmt/format.h>
#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace strata::control {

namespace {

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

// Everything that is not in the counter list, in the order exposed.
constexpr Family kOthers[] = {
    {"strata_processing_time_seconds", "histogram",
     "Server processing time of each reply: kernel receive timestamp to transmit timestamp."},
    {"strata_poll_interval_seconds", "histogram",
     "Gaps between a client's consecutive requests (clients in the client table)."},
    {"strata_nts_ke_duration_seconds", "histogram",
     "NTS-KE exchanges answered: accept to the last octet of the response sent."},
    {"strata_nts_certificate_expiry_seconds", "gauge",
     "Seconds until the NTS-KE certificate in force expires (absent without NTS-KE)."},
    {"strata_nts_key_age_seconds", "gauge",
     "Seconds the current NTS cookie master key has been current (0 after each rotation; absent "
     "without NTS)."},
    {"strata_unique_clients", "gauge",
     "Distinct clients in the current window (label window: 1m, 1h, 1d, UTC-aligned; kind: v4 "
     "and v6 addresses, v4/24, v6/64 and v6/48 prefixes), HyperLogLog estimate (0.8% error)."},
    {"strata_nts_ke_unique_clients", "gauge",
     "Distinct NTS-KE clients in the current window (labels as strata_unique_clients): KE churn."},
    {"strata_top_talker_share", "gauge",
     "Share of the current window's requests sent by the talker of this rank (1-10), from "
     "Space-Saving summaries (an upper bound)."},
    {"strata_top_network_share", "gauge",
     "With [networks]: share of the current hour's requests from the network of this rank "
     "(1-10; labels asn and org), the heaviest prefixes grouped by AS (an upper bound)."},
    {"strata_cost_month_usd", "gauge",
     "With [cost]: what a month of the last second's outgoing traffic costs at its provider or "
     "price, in USD (the history's cost_month; absent without [cost])."},
    {"strata_blocks_active", "gauge", "Dynamic blocks in force (by rules and by hand)."},
    {"strata_blocks_max_active", "gauge", "The cap on active dynamic blocks ([blocks] max_active)."},
    {"strata_blocks_placed_total", "counter", "Dynamic blocks placed since start, by rules and by hand."},
    {"strata_state_saves_total", "counter",
     "With [clients] state_dir: successful saves of a state file since start (label file: "
     "sketches, history, blocks)."},
    {"strata_state_save_failures_total", "counter",
     "With [clients] state_dir: saves of a state file that failed (disk full, permissions); the "
     "previous file stays (label file)."},
    {"strata_state_last_save_timestamp_seconds", "gauge",
     "With [clients] state_dir: Unix time of a state file's last successful save in this run "
     "(0: none yet; label file)."},
    {"strata_client_records", "gauge", "Client records in use, all workers."},
    {"strata_client_records_capacity", "gauge", "Client records the configured memory holds."},
    {"strata_client_memory_bytes", "gauge", "Memory of the client tables (records and limiter)."},
    {"strata_ratelimit_prefixes", "gauge", "Rate-limit prefixes holding state."},
    {"strata_interleave_held", "gauge",
     "Transmit timestamps held for interleaved clients' next requests, all workers."},
    {"strata_interleave_capacity", "gauge",
     "Transmit timestamps the interleave tables hold ([server] interleaved_entries; 0: off)."},
    {"strata_workers", "gauge", "Worker threads serving NTP."},
    {"strata_time_synchronised", "gauge", "1 when the time source is synchronised, else 0."},
    {"strata_time_stratum", "gauge", "Stratum served."},
    {"strata_time_root_dispersion_seconds", "gauge", "Root dispersion served now."},
    {"strata_uptime_seconds", "gauge", "Seconds since stratad started."},
    {"process_cpu_seconds_total", "counter", "User and system CPU time of the process."},
    {"process_resident_memory_bytes", "gauge", "Resident memory of the process."},
    {"process_virtual_memory_bytes", "gauge", "Virtual memory of the process."},
    {"process_open_fds", "gauge", "Open file descriptors."},
};

// A label value as the exposition format wants it: backslash, quote and newline escaped (an
// organisation's name comes from a database file).
std::string label_value(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string counter_name(const stats::CounterInfo& c) {
  return fmt::format("strata_{}_total", c.name);
}

void header(std::string& out, const std::string& name, const char* type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

const Family& other(std::string_view name) {
  for (const auto& o : kOthers)
    if (name == o.name) return o;
  return kOthers[0];
}

void histogram(std::string& out, const char* name, const stats::HistogramCounts& h,
               const std::vector<double>& bounds, double unit) {
  header(out, name, "histogram", other(name).help);
  for (double le : bounds)
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {:.0f}\n", name, le,
                   h.count_below(static_cast<uint64_t>(le / unit)));
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n", name, h.total());
  // The sum from bucket midpoints: within a bucket's width (6.25%) of the true sum.
  double sum = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i)
    if (h.buckets[i] != 0)
      sum += static_cast<double>(h.buckets[i]) *
             (static_cast<double>(stats::bucket_lower(i)) + static_cast<double>(stats::bucket_upper(i))) / 2;
  fmt::format_to(std::back_inserter(out), "{}_sum {}\n{}_count {}\n", name, sum * unit, name, h.total());
}

void gauge(std::string& out, std::string_view name, double value) {
  const Family& f = other(name);
  header(out, f.name, f.type, f.help);
  fmt::format_to(std::back_inserter(out), "{} {}\n", f.name, value);
}

// /proc/self: CPU seconds, resident and virtual bytes, open descriptors.
void process(std::string& out) {
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');
  std::istringstream fields(close == std::string::npos ? "" : line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  // Fields after the command: state is [0]; utime [11], stime [12], vsize [20], rss [21].
  if (f.size() > 21) {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    gauge(out, "process_cpu_seconds_total", (std::stod(f[11]) + std::stod(f[12])) / ticks);
    gauge(out, "process_resident_memory_bytes",
          std::stod(f[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
    gauge(out, "process_virtual_memory_bytes", std::stod(f[20]));
  }
  size_t fds = 0;
  if (auto* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir) != nullptr) ++fds;
    ::closedir(dir);
  }
  gauge(out, "process_open_fds", static_cast<double>(fds > 3 ? fds - 3 : 0));  // ., .., the dir
}

}  // namespace

const std::vector<double>& processing_time_buckets() {
  static const std::vector<double> b = {1e-6,   2e-6,   5e-6, 10e-6, 20e-6, 50e-6, 100e-6,
                                        200e-6, 500e-6, 1e-3, 2e-3,  5e-3,  10e-3, 100e-3};
  return b;
}

const std::vector<double>& nts_ke_buckets() {
  static const std::vector<double> b = {1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1, 2, 5};
  return b;
}

const std::vector<double>& poll_interval_buckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 86400};
  return b;
}

std::string metrics_text(const MetricsInput& in) {
  std::string out;
  out.reserve(32 << 10);
  const StatsSnapshot& s = in.stats;
  for (size_t i = 0; i < stats::kCounterCount; ++i) {
    const auto& c = stats::kCounterInfo[i];
    const std::string name = counter_name(c);
    header(out, name, "counter", c.help);
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, s.counters[i]);
  }
  histogram(out, "strata_processing_time_seconds", s.processing_ns, processing_time_buckets(), 1e-9);
  histogram(out, "strata_poll_interval_seconds", s.poll_interval_ms, poll_interval_buckets(), 1e-3);
  histogram(out, "strata_nts_ke_duration_seconds", s.nts_ke_ns, nts_ke_buckets(), 1e-9);
  if (s.nts_certificate_expiry_s) {
    header(out, "strata_nts_certificate_expiry_seconds", "gauge", other("strata_nts_certificate_expiry_seconds").help);
    fmt::format_to(std::back_inserter(out), "strata_nts_certificate_expiry_seconds {:.0f}\n", *s.nts_certificate_expiry_s);
  }
  if (s.nts_key_age_s) {
    header(out, "strata_nts_key_age_seconds", "gauge", other("strata_nts_key_age_seconds").help);
    fmt::format_to(std::back_inserter(out), "strata_nts_key_age_seconds {:.0f}\n", *s.nts_key_age_s);
  }
  header(out, "strata_unique_clients", "gauge", other("strata_unique_clients").help);
  for (const auto& u : in.unique)
    fmt::format_to(std::back_inserter(out), "strata_unique_clients{{window=\"{}\",kind=\"{}\"}} {:.0f}\n",
                   u.window, u.kind, u.estimate);
  if (!in.ke_unique.empty()) {
    header(out, "strata_nts_ke_unique_clients", "gauge", other("strata_nts_ke_unique_clients").help);
    for (const auto& u : in.ke_unique)
      fmt::format_to(std::back_inserter(out), "strata_nts_ke_unique_clients{{window=\"{}\",kind=\"{}\"}} {:.0f}\n",
                     u.window, u.kind, u.estimate);
  }
  header(out, "strata_top_talker_share", "gauge", other("strata_top_talker_share").help);
  for (const auto& t : in.top)
    for (size_t r = 0; r < t.shares.size() && r < 10; ++r)
      fmt::format_to(std::back_inserter(out), "strata_top_talker_share{{window=\"{}\",rank=\"{}\"}} {}\n",
                     t.window, r + 1, t.shares[r]);
  if (!in.networks.empty()) {
    header(out, "strata_top_network_share", "gauge", other("strata_top_network_share").help);
    for (size_t r = 0; r < in.networks.size() && r < 10; ++r)
      fmt::format_to(std::back_inserter(out), "strata_top_network_share{{rank=\"{}\",asn=\"{}\",org=\"{}\"}} {}\n",
                     r + 1, in.networks[r].asn, label_value(in.networks[r].org), in.networks[r].share);
  }
  if (in.cost_month_usd) gauge(out, "strata_cost_month_usd", *in.cost_month_usd);
  gauge(out, "strata_blocks_active", static_cast<double>(in.blocks.active));
  gauge(out, "strata_blocks_max_active", static_cast<double>(in.blocks.max_active));
  header(out, "strata_blocks_placed_total", "counter", other("strata_blocks_placed_total").help);
  fmt::format_to(std::back_inserter(out), "strata_blocks_placed_total {}\n", in.blocks.placed);
  // Each state file's family, one line per file.
  const auto per_file = [&](const char* name, auto value) {
    if (in.state.empty()) return;
    const Family& f = other(name);
    header(out, f.name, f.type, f.help);
    for (const auto& st : in.state)
      fmt::format_to(std::back_inserter(out), "{}{{file=\"{}\"}} {:.0f}\n", name, label_value(st.file),
                     static_cast<double>(value(st)));
  };
  per_file("strata_state_saves_total", [](const MetricsInput::StateFile& st) { return st.saves; });
  per_file("strata_state_save_failures_total", [](const MetricsInput::StateFile& st) { return st.failures; });
  per_file("strata_state_last_save_timestamp_seconds", [](const MetricsInput::StateFile& st) { return st.last_save_unix; });
  gauge(out, "strata_client_records", static_cast<double>(s.clients.records));
  gauge(out, "strata_client_records_capacity", static_cast<double>(s.clients.capacity));
  gauge(out, "strata_client_memory_bytes", static_cast<double>(s.clients.memory_bytes));
  gauge(out, "strata_ratelimit_prefixes", static_cast<double>(s.clients.prefixes));
  gauge(out, "strata_interleave_held", static_cast<double>(s.interleave.held));
  gauge(out, "strata_interleave_capacity", static_cast<double>(s.interleave.capacity));
  gauge(out, "strata_workers", s.workers);
  gauge(out, "strata_time_synchronised", s.time.synchronised ? 1 : 0);
  gauge(out, "strata_time_stratum", s.time.synchronised ? s.time.stratum : 16);
  gauge(out, "strata_time_root_dispersion_seconds", s.time.root_dispersion);
  gauge(out, "strata_uptime_seconds", s.uptime_s);
  process(out);
  return out;
}

std::string metrics_markdown() {
  std::string out =
      "# stratad metrics\n\n"
      "Generated from `src/stats/counters.h` and `src/control/metrics.cc` by "
      "`build/metrics_doc` (a test fails when this file is out of date). stratad serves them "
      "in the Prometheus text format at `http://[metrics] listen/metrics` (default "
      "127.0.0.1:9123).\n\n"
      "| metric | type | meaning |\n| --- | --- | --- |\n";
  for (const auto& c : stats::kCounterInfo) {
    std::string help(c.help);
    if (!c.ntpq_label.empty()) help += fmt::format(" (ntpq sysstats: `{}`)", c.ntpq_label);
    fmt::format_to(std::back_inserter(out), "| `{}` | counter | {} |\n", counter_name(c), help);
  }
  for (const auto& o : kOthers)
    fmt::format_to(std::back_inserter(out), "| `{}` | {} | {} |\n", o.name, o.type, o.help);
  return out;
}

}  // namespace strata::control
