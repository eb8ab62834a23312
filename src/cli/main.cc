// strata: the operator's CLI. Parses the command line (CLI11) and runs one subcommand.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "base/command_line.h"
#include "cli/commands.h"
#include "cli/cost.h"

namespace {
constexpr const char* kControlHelp =
    "stratad's control socket (default: the [server] control of --config, else $STRATA_CONTROL, "
    "else /run/stratad/control.sock)";
constexpr const char* kConfigHelp = "stratad's config file: its [server] control is the socket";
}  // namespace

int main(int argc, char** argv) {
  using namespace strata::cli;
  CLI::App app{"strata: query NTP servers, read stratad's statistics and clients, load-test a server.",
               "strata"};
  app.require_subcommand(1);
  strata::base::show_defaults(app);
  app.set_version_flag("-V,--version", std::string("strata ") + STRATA_VERSION);

  QueryOptions q;
  CLI::App* query = app.add_subcommand("query", "ask an NTP server for the time (like sntp)");
  query->add_option("server", q.server, "HOST[:PORT] or [IPv6]:PORT (port 123 by default)")->required();
  query->add_option("-c,--count", q.count, "requests to send, one per interval")->check(CLI::Range(1, 100000));
  query->add_option("-i,--interval", q.interval, "seconds between requests")->check(CLI::Range(0.0, 3600.0));
  query->add_option("-t,--timeout", q.timeout, "seconds to wait for each reply")->check(CLI::Range(0.01, 60.0));
  auto* v4 = query->add_flag("-4", q.ipv4, "IPv4 only");
  query->add_flag("-6", q.ipv6, "IPv6 only")->excludes(v4);
  query->add_option("--ntp-version", q.version, "NTP version of the request")->check(CLI::Range(1, 4));
  query->add_flag("--json", q.json, "JSON output");
  auto* keys = query->add_option("-k,--keys", q.keys, "keys file (ntp.keys or chrony syntax)");
  query->add_option("-a,--auth", q.key_id, "authenticate with this key id from the keys file")
      ->check(CLI::Range(1u, 0xffffffffu))->needs(keys);
  auto* nts = query->add_flag("--nts", q.nts,
                               "Network Time Security: SERVER is the NTS-KE host[:port] (port 4460 by "
                               "default); the NTP server and port come from its response")
                  ->excludes(keys);
  query->add_option("--ca", q.ca, "NTS: CA certificates (PEM) to check the server's with "
                                  "(default: the system's)")
      ->needs(nts);

  StatsOptions s;
  CLI::App* stats = app.add_subcommand("stats", "show stratad's counters (ntpq sysstats labels first)");
  stats->add_option("--control", s.control, kControlHelp);
  stats->add_option("--config", s.config_file, kConfigHelp);
  stats->add_flag("--json", s.json, "JSON output");

  ClientsOptions c;
  CLI::App* clients = app.add_subcommand(
      "clients", "list stratad's clients (ntpq's mrulist, sorted and filtered by the server)");
  clients->add_option("--control", c.control, kControlHelp);
  clients->add_option("--config", c.config_file, kConfigHelp);
  clients->add_option("--sort", c.sort,
                      "lstint: most recently seen first; count: most requests first; avgint: "
                      "shortest average interval first; addr: by address; a leading - reverses "
                      "(so strata's count is ntpq's sort=-count)")
      ->check(CLI::IsMember({"lstint", "-lstint", "count", "-count", "avgint", "-avgint", "addr",
                             "-addr"}));
  clients->add_option("--limit", c.limit, "show at most N clients (0: all)");
  clients->add_option("--mincount", c.mincount, "only clients with at least N requests");
  clients->add_flag("--limited", c.limited, "only clients whose last request was over the rate limit");
  clients->add_flag("--kod", c.kod, "only clients that were sent at least one Kiss-o'-Death "
                                    "(ntpq's mrulist kod: only those whose last request drew one)");
  clients->add_option("--prefix", c.prefix, "only clients in this CIDR, e.g. 192.0.2.0/24");
  clients->add_option("--laddr", c.laddr, "only clients that reached this local address");
  auto* cjson = clients->add_flag("--json", c.json, "JSON output (an array of objects)");
  clients->add_flag("--csv", c.csv, "CSV output with a header line")->excludes(cjson);
  clients->add_flag("--count", c.count,
                    "unique clients (addresses and prefixes, per family) in the current and "
                    "previous minute, hour and day, from HyperLogLog sketches");
  clients->add_flag("--kod-effect", c.kod_effect,
                    "did KoD work? each client's request rate before and after its first KoD "
                    "RATE, and the share that slowed down");
  clients->add_option("--min-age", c.min_age, "with --kod-effect: seconds after the KoD before "
                                              "a client is judged")->check(CLI::Range(0.0, 86400.0));
  clients->add_option("--save-sketch", c.save_sketch,
                      "write the unique-client sketches to FILE, for strata merge-sketches");
  clients->footer(
      "Columns: lstint = seconds since the last request; avgint = (last - first) / (count - 1), "
      "ntpd's average interval; lim = outcome of the last request (L over the rate limit, K "
      "answered with KoD, P passed by the random leak); m, v = mode and version; drops = "
      "requests dropped by the rate limiter; kods = KoDs sent.");

  std::string reload_control, reload_config;
  CLI::App* reload = app.add_subcommand(
      "reload", "make stratad re-read its config file: new access rules, rate limits and keys apply "
                "at once, clients and counters stay (like SIGHUP)");
  reload->add_option("--control", reload_control, kControlHelp);
  reload->add_option("--config", reload_config, kConfigHelp);

  TopOptions t;
  CLI::App* top = app.add_subcommand(
      "top", "stratad's top talkers in a window, with their share of all traffic (Space-Saving: "
             "a flood of one-packet sources cannot push real top talkers out)");
  top->add_option("--control", t.control, kControlHelp);
  top->add_option("--config", t.config_file, kConfigHelp);
  top->add_option("--by", t.by, "rank by requests or bytes (IP level), or requests grouped by network "
                                 "or country ([networks] databases)")
      ->check(CLI::IsMember({"requests", "bytes", "network", "country"}));
  top->add_option("--window", t.window, "1m, 1h or 1d (UTC-aligned)")->check(CLI::IsMember({"1m", "1h", "1d"}));
  top->add_flag("--prefix", t.prefix, "IPv4 /24 and IPv6 /48 prefixes instead of addresses");
  top->add_flag("--previous", t.previous, "the last complete window instead of the current one");
  top->add_option("--limit", t.limit, "rows to show")->check(CLI::Range(1, 512));
  top->add_option("--watch", t.watch, "refresh every SECONDS until interrupted, like top(1)")
      ->check(CLI::Range(0.1, 3600.0));
  top->add_flag("--ke", t.ke, "NTS-KE clients (handshakes) instead of NTP clients: KE churn by address or prefix");
  top->add_flag("--json", t.json, "JSON output");

  HistoryOptions h;
  CLI::App* history = app.add_subcommand(
      "history", "stratad's own history of its main series: 1 s for the last hour, 1 min for 7 "
                 "days, 1 h for 400 days (kept in its state directory across restarts)");
  history->add_option("--control", h.control, kControlHelp);
  history->add_option("--config", h.config_file, kConfigHelp);
  history->add_option("--series", h.series,
                      "series, comma-separated (default in the table: requests, replies, "
                      "rate_limited, kod, kernel_drops, unique_1m; JSON and CSV: all)");
  history->add_option("--since", h.since, "from: 30m, 1h, 7d (before now), unix seconds, or UTC "
                                          "2026-12-04T10:00:00Z");
  history->add_option("--until", h.until, "to (default now), as --since");
  history->add_option("--step", h.step, "1s, 1m or 1h (default: the finest that covers the range)")
      ->check(CLI::IsMember({"1s", "1m", "1h"}));
  history->add_flag("--max", h.max, "the highest second of each row instead of the mean (1m and 1h)");
  auto* history_json = history->add_flag("--json", h.json, "JSON output (every series, means and maxima)");
  history->add_flag("--csv", h.csv, "CSV output")->excludes(history_json);

  BlockOptions b;
  CLI::App* block = app.add_subcommand(
      "block", "stratad's dynamic blocks: list them (rules' and yours), add or remove one by hand");
  block->require_subcommand(1);
  CLI::App* block_list = block->add_subcommand("list", "the active blocks (prefix, action, reason, rule or hand, "
                                                       "hits, since, expires) and recent warnings");
  CLI::App* block_add = block->add_subcommand("add", "block a prefix for a while (kept across restarts)");
  block_add->add_option("prefix", b.prefix, "address or prefix: 192.0.2.0/24, 2001:db8::/48")->required();
  block_add->add_option("--for", b.for_text, "how long: 90s, 30m, 1h, 7d (default 1h)");
  block_add->add_option("--action", b.action, "drop, kod (KoD RATE, paced) or leak (only the limiter's leak "
                                              "share answered)")
      ->check(CLI::IsMember({"drop", "kod", "leak"}));
  block_add->add_option("--reason", b.reason, "why, shown in strata block list and the log");
  CLI::App* block_remove = block->add_subcommand("remove", "lift the block on exactly this prefix");
  block_remove->add_option("prefix", b.prefix, "address or prefix, as listed")->required();
  for (CLI::App* sub : {block_list, block_add, block_remove}) {
    sub->add_option("--control", b.control, kControlHelp);
    sub->add_option("--config", b.config_file, kConfigHelp);
    sub->add_flag("--json", b.json, "JSON output");
  }

  std::vector<std::string> sketch_files;
  bool merge_json = false;
  CLI::App* merge = app.add_subcommand(
      "merge-sketches", "unique clients over several servers: merges files written by "
                        "strata clients --save-sketch (same windows add up)");
  merge->add_option("files", sketch_files, "sketch files")->required()->check(CLI::ExistingFile);
  merge->add_flag("--json", merge_json, "the merged sketches as JSON (mergeable again)");

  LoadOptions l;
  CLI::App* load = app.add_subcommand(
      "load", "load-test an NTP server from many source addresses, validating every reply");
  load->add_option("--server", l.server, "ADDR:PORT of the server (with --nts: default the NTP server "
                                         "and port of the NTS-KE response)");
  load->add_option("--nts", l.nts, "Network Time Security: one NTS-KE with HOST[:PORT] (port 4460 by "
                                   "default), then every request with a cookie of its own and 0-7 "
                                   "placeholders, every reply decrypted and checked");
  load->add_option("--ca", l.ca, "with --nts: CA certificates (PEM) to check the KE server's with");
  load->add_option("--placeholders", l.placeholders,
                   "with --nts: cookie placeholders per request, 0-7 (default: 0 to 7 in turn)")
      ->check(CLI::Range(0, 7));
  load->add_option("--check-every", l.check_every,
                   "with --nts: decrypt and check one reply in N (default 1: every one); with N > 1 "
                   "the pool's cookies are reused in turn, a cheaper generator for benchmarks")
      ->check(CLI::Range(1u, 1000000u));
  load->add_flag("--interleaved", l.interleaved,
                 "each client address asks as an interleaved client (chronyd's xleave): origin = "
                 "the receive timestamp of the server's last reply to that address; interleaved "
                 "replies are counted and checked");
  load->add_flag("--ke-only", l.ke_only, "with --nts: only NTS-KE exchanges, --sockets of them at once, "
                                         "for --duration (handshakes per second and their latency)");
  load->add_option("--clients", l.clients,
                   "distinct source addresses (loopback servers: any 127.x.y.z is used)")
      ->check(CLI::Range(1u, 16000000u));
  load->add_option("--source-prefix", l.source_prefix,
                   "CIDR the client addresses come from (default 127.0.0.0/8 for a loopback "
                   "server); every address in it must be local to this host");
  auto* rate = load->add_option("--rate", l.rate, "requests per second, open loop")
                   ->check(CLI::Range(1.0, 1e8));
  load->add_flag("--max", l.max, "send as fast as replies come (closed loop)")->excludes(rate);
  load->add_option("--window", l.window, "requests in flight with --max (default 64 per socket)")
      ->check(CLI::Range(1u, 1000000u));
  load->add_option("--duration", l.duration, "seconds of sending")->check(CLI::Range(0.01, 3600.0));
  load->add_option("--timeout", l.timeout, "seconds to wait for late replies after sending")
      ->check(CLI::Range(0.0, 60.0));
  load->add_option("--sockets", l.sockets, "source sockets, i.e. source ports")->check(CLI::Range(1u, 256u));
  load->add_option("--ntp-version", l.version, "NTP version of the requests")->check(CLI::Range(1, 4));
  load->add_flag("--json", l.json, "JSON output");

  AnalyzeOptions an;
  CLI::App* analyze = app.add_subcommand(
      "analyze", "NTP traffic in packet captures (pcap, pcapng): requests and replies, unique "
                 "clients, requests per client, top talkers, and what blocking the busiest would save");
  analyze->add_option("files", an.files, "capture files")->required();
  analyze->add_option("--port", an.port, "the NTP port (default 123)");
  analyze->add_option("--server", an.server, "the server's address: requests go to it, replies come from it");
  analyze->add_option("--top", an.top, "top talkers to list")->check(CLI::Range(size_t{0}, size_t{100000}));
  auto* an_provider = analyze->add_option("--provider", an.provider, "prices for the savings column (default aws)");
  analyze->add_option("--price", an.price, "a flat price in USD per GiB instead")
      ->check(CLI::Range(0.0, 1000.0))->excludes(an_provider);
  analyze->add_flag("--json", an.json, "JSON output");
  analyze->add_option("--policy", an.policy,
                      "what if: replay the requests, at their capture times, through the access "
                      "rules, rate limits and dynamic-block rules of this stratad config file")
      ->check(CLI::ExistingFile);
  analyze->add_option("--networks", an.networks,
                      "MaxMind-format database(s): an ASN and/or a country one (GeoLite2, DB-IP Lite, "
                      "IPinfo Lite), for top networks and countries; repeat for two")
      ->check(CLI::ExistingFile)->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  analyze->add_option("--html", an.html, "also write the report with its charts as one self-contained HTML page");
  analyze->add_option("--csv", an.csv_dir, "also write clients.csv (every client's counts), "
                                           "distribution.csv, intervals.csv and thresholds.csv "
                                           "into DIR");

  CostOptions co;
  CLI::App* cost = app.add_subcommand(
      "cost", "what the traffic costs: packets in and out -> GiB per month at the IP level -> "
              "money under tiered provider prices, with the inputs shown");
  auto* from_control = cost->add_option("--control", co.control, "a live stratad's control socket");
  auto* from_sysstats = cost->add_option("--sysstats", co.sysstats,
                                         "a file with `ntpq -c sysstats` output (- for stdin)");
  auto* from_capture = cost->add_option("--capture", co.captures,
                                        "pcap/pcapng files: requests and replies measured in them");
  cost->add_option("--port", co.port, "the NTP port in the captures (default 123)")->needs(from_capture);
  auto* from_rate = cost->add_option("--rate", co.rate, "packets per second received")
                        ->check(CLI::Range(0.0, 1e12));
  from_control->excludes(from_sysstats)->excludes(from_rate)->excludes(from_capture);
  from_sysstats->excludes(from_rate)->excludes(from_capture);
  from_capture->excludes(from_rate);
  cost->add_option("--sent-rate", co.sent_rate, "packets per second sent (with --rate; default: as received)")
      ->check(CLI::Range(0.0, 1e12))->needs(from_rate);
  cost->add_option("--v6-share", co.v6_share, "share of IPv6 packets, 0..1 (default: measured, else 0)")
      ->check(CLI::Range(0.0, 1.0));
  cost->add_option("--nts-share", co.nts_share,
                   "with --rate: share of the packets with NTS, 0..1 (180 octets more each way; measured "
                   "from --control and --capture)")
      ->check(CLI::Range(0.0, 1.0))->needs(from_rate);
  cost->add_flag("--l2", co.l2, "count 14 octets of Ethernet per packet (providers that bill frames)");
  auto* provider = cost->add_option("--provider", co.provider, "one provider of the prices file (default: all)");
  cost->add_option("--price", co.price, "a flat price in USD per GiB instead of the prices file")
      ->check(CLI::Range(0.0, 1000.0))->excludes(provider);
  cost->add_option("--prices", co.prices, "an edited prices file instead of the built-in data/prices.toml");
  cost->add_flag("--json", co.json, "JSON output");

  // 2 for a usage error, as strata(1) says (not CLI11's own 105-109).
  if (const auto status = strata::base::parse_command_line(app, argc, argv, 2)) return *status;
  if (cost->parsed()) return run_cost(co);
  if (analyze->parsed()) return run_analyze(an);
  if (query->parsed()) return run_query(q);
  // The commands that talk to stratad: find its control socket first.
  std::string error;
  const auto resolve = [&](std::string& control, const std::string& config_file) {
    control = control_path(control, config_file, error);
    if (!error.empty()) fmt::print(stderr, "strata: {}\n", error);
    return error.empty();
  };
  if (stats->parsed()) return resolve(s.control, s.config_file) ? run_stats(s) : 2;
  if (clients->parsed()) return resolve(c.control, c.config_file) ? run_clients(c) : 2;
  if (reload->parsed()) return resolve(reload_control, reload_config) ? run_reload(reload_control) : 2;
  if (merge->parsed()) return run_merge_sketches(sketch_files, merge_json);
  if (top->parsed()) return resolve(t.control, t.config_file) ? run_top(t) : 2;
  if (history->parsed()) return resolve(h.control, h.config_file) ? run_history(h) : 2;
  if (block->parsed()) {
    b.op = block_add->parsed() ? "add" : block_remove->parsed() ? "remove" : "list";
    return resolve(b.control, b.config_file) ? run_block(b) : 2;
  }
  if (load->parsed()) {
    if (!l.rate && !l.max && !l.ke_only) {
      fmt::print(stderr, "strata load: give --rate R or --max\n");
      return 2;
    }
    return run_load(l);
  }
  return 2;
}
