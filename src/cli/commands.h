// The strata subcommands. Each takes its parsed options and returns the process exit status.
// Called from cli/main.cc on the main thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::cli {

// Where stratad's control socket is, for the commands that talk to it: --control when given,
// else the [server] control of --config (stratad's config file), else $STRATA_CONTROL, else
// config::kDefaultControlPath (stratad's default). Empty with `error` set when the config file cannot be read.
std::string control_path(const std::string& flag, const std::string& config_file, std::string& error);

struct QueryOptions {
  std::string server;       // HOST[:PORT]
  int count = 1;            // requests, one per interval
  double interval = 1.0;    // seconds between requests
  double timeout = 2.0;     // seconds to wait for each reply
  bool ipv4 = false;
  bool ipv6 = false;
  bool json = false;
  int version = 4;
  std::string keys;     // keys file (ntp.keys or chrony syntax)
  uint32_t key_id = 0;  // authenticate with this key from `keys`
  bool nts = false;     // `server` is an NTS-KE host[:port] (default port 4460)
  std::string ca;       // NTS: CA file to check the KE certificate with ("": the system's)
};
int run_query(const QueryOptions& options);

struct AnalyzeOptions {
  std::vector<std::string> files;
  uint16_t port = 123;
  std::string server;       // tells requests from replies by address
  size_t top = 10;
  std::string provider = "aws";
  double price = -1;        // flat USD per GiB instead
  bool json = false;
  std::string csv_dir;      // write clients.csv, distribution.csv, thresholds.csv there
  std::string policy;       // a stratad config: replay the requests through its rules and limits
  std::string html;         // write the report as one self-contained HTML page
  // MaxMind-format databases (one with both fields, or an ASN and a country one): top
  // networks and countries by requests, replies, bytes and money.
  std::vector<std::string> networks;
};
int run_analyze(const AnalyzeOptions& options);

struct StatsOptions {
  std::string control;      // resolved by control_path() before the command runs
  std::string config_file;  // stratad's config: its [server] control
  bool json = false;
};
int run_stats(const StatsOptions& options);

struct ClientsOptions {
  std::string control;      // resolved by control_path() before the command runs
  std::string config_file;  // stratad's config: its [server] control
  std::string sort = "lstint";  // [-]lstint | [-]count | [-]avgint | [-]addr
  size_t limit = 0;             // 0: all
  uint32_t mincount = 0;
  bool limited = false;
  bool kod = false;
  std::string prefix;  // CIDR filter
  std::string laddr;   // local address filter
  bool json = false;
  bool csv = false;
  bool count = false;       // unique clients per window instead of the list
  std::string save_sketch;  // write the unique-client sketches to this file
  bool kod_effect = false;  // did clients slow down after their first KoD?
  double min_age = 60;      // seconds after a KoD before a client is judged
};
int run_clients(const ClientsOptions& options);

struct TopOptions {
  std::string control;      // resolved by control_path() before the command runs
  std::string config_file;  // stratad's config: its [server] control
  std::string by = "requests";  // requests | bytes
  std::string window = "1m";    // 1m | 1h | 1d
  bool prefix = false;          // IPv4 /24 and IPv6 /48 instead of addresses
  bool previous = false;        // the last complete window
  int limit = 20;
  std::optional<double> watch;  // refresh every this many seconds, like top(1)
  bool ke = false;              // NTS-KE clients instead of NTP clients
  bool json = false;
};
int run_top(const TopOptions& options);

struct BlockOptions {
  std::string control;      // resolved by control_path() before the command runs
  std::string config_file;  // stratad's config: its [server] control
  std::string op = "list";  // list | add | remove
  std::string prefix;
  std::string for_text = "1h";
  std::string action = "drop";  // drop | kod | leak
  std::string reason = "by hand";
  bool json = false;
};
int run_block(const BlockOptions& options);
// "90s", "30m", "1h", "7d" or plain seconds -> seconds (> 0).
std::optional<double> parse_duration(std::string_view text);

struct HistoryOptions {
  std::string control;      // resolved by control_path() before the command runs
  std::string config_file;  // stratad's config: its [server] control
  std::string series;       // "a,b" ("": requests, replies, rate_limited, kod, kernel_drops, unique_1m)
  std::string since = "1h"; // how far back (1h, 30m, 7d), unix seconds, or UTC 2026-12-04T10:00:00Z
  std::string until;        // the same ("": now)
  std::string step;         // 1s | 1m | 1h ("": the finest tier that covers the range)
  bool max = false;         // text and CSV: the points' maxima instead of their means
  bool json = false;
  bool csv = false;
};
int run_history(const HistoryOptions& options);
// A time for --since/--until: "90s", "30m", "1h", "7d" (that long before now, a leading "-"
// allowed), unix seconds ("1796083200"), or UTC "2026-12-04T10:00:00Z" / "2026-12-04 10:00".
std::optional<int64_t> parse_when(std::string_view text, int64_t now_s);
// "2026-12-04 10:00:00": unix seconds as UTC, for the commands' tables.
std::string utc_text(int64_t unix_seconds);

// `strata merge-sketches FILE...`: unique clients over several servers' saved sketches.
int run_merge_sketches(const std::vector<std::string>& files, bool json);

// `strata reload`: stratad re-reads its config file and applies new access rules and rate
// limits at once; on errors it keeps the running configuration and they are printed.
int run_reload(const std::string& control);

struct LoadOptions {
  std::string server;              // ADDR:PORT
  unsigned clients = 1;            // distinct source addresses
  std::string source_prefix;       // where the client addresses come from ("" = loopback)
  std::optional<double> rate;      // requests per second (open loop)
  bool max = false;                // as fast as replies come (closed loop)
  unsigned window = 0;             // outstanding requests in --max mode (0: auto)
  double duration = 5.0;           // seconds of sending
  double timeout = 1.0;            // seconds to wait for replies after the last request
  unsigned sockets = 4;            // source sockets (source ports)
  int version = 4;
  bool json = false;
  std::string nts;  // NTS-KE HOST[:PORT]: NTS requests with its cookies
  std::string ca;   // CA file for the KE certificate ("": the system's)
  int placeholders = -1;  // NTS: per request (-1: 0-7 in turn)
  bool ke_only = false;   // NTS: NTS-KE exchanges only, `sockets` at once, for `duration`
  unsigned check_every = 1;  // NTS: decrypt and check one reply in this many (1: all)
  bool interleaved = false;  // requests as an interleaved (xleave) client sends them
};
int run_load(const LoadOptions& options);

}  // namespace strata::cli
