// stratad: wires the modules together. Starts in this order: config, sockets, control socket,
// time source, privilege drop, clock thread, workers, control thread; then waits for signals
// on the main thread and stops in reverse order on SIGTERM or SIGINT.
#include <grp.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <systemd/sd-daemon.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <cmath>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/atomic_file.h"
#include "base/command_line.h"
#include "base/log.h"
#include "clock/clock_service.h"
#include "config/changes.h"
#include "config/config.h"
#include "config/rules.h"
#include "control/clients_report.h"
#include "control/json_text.h"
#include "control/control_server.h"
#include "control/blocks_report.h"
#include "control/history_report.h"
#include "web/api.h"
#include "control/kod_report.h"
#include "control/metrics.h"
#include "control/metrics_server.h"
#include "control/top_report.h"
#include "control/unique_report.h"
#include "control/report.h"
#include "daemon/run_as.h"
#include "daemon/sandbox.h"
#include "nts/cookies.h"
#include "nts/ke_server.h"
#include "io/address_in_use.h"
#include "io/steering.h"
#include "io/udp_backend.h"
#include "io/xdp_backend.h"
#include "io/xdp_path.h"
#include "server/control_service.h"
#include "server/worker.h"

namespace strata {
namespace {

using base::LogLevel;

struct Flags {
  std::string config_path;
  std::vector<std::string> listen;
  std::optional<unsigned> threads;
  std::optional<std::string> control;
  std::optional<std::string> user;
  bool check_config = false;
  bool verbose = false;
};

unsigned cpus_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// Config file (or defaults), then command-line overrides. Errors go to `errors` (or the
// log, when null); nullopt on failure.
std::optional<config::Config> build_config(const Flags& flags,
                                           std::vector<std::string>* errors = nullptr,
                                           std::vector<std::string>* warnings = nullptr) {
  config::Config cfg = config::default_config();
  if (!flags.config_path.empty()) {
    config::LoadResult r = config::load_config(flags.config_path);
    for (const auto& e : r.errors) {
      if (errors != nullptr) errors->push_back(e.to_string());
      else base::log(LogLevel::kError, "{}", e.to_string());
    }
    for (const auto& w : r.warnings) {
      base::log(LogLevel::kWarning, "{}", w.to_string());
      if (warnings != nullptr) warnings->push_back(w.to_string());
    }
    if (!r.config) return std::nullopt;
    cfg = *r.config;
  }
  if (!flags.listen.empty()) {
    cfg.server.listen.clear();
    cfg.server.listen_is_default = false;
    for (const auto& text : flags.listen) {
      const auto ep = base::Endpoint::parse(text, config::kNtpPort);
      if (!ep) {
        const std::string hint = base::endpoint_hint(text);
        base::log(LogLevel::kError, "--listen {}: {}", text,
                  hint.empty() ? "expected ADDR[:PORT], IPv6 in brackets" : hint);
        return std::nullopt;
      }
      cfg.server.listen.push_back(*ep);
    }
  }
  if (flags.threads) cfg.server.threads = *flags.threads;
  if (flags.control) {
    if (flags.control->size() > config::kMaxControlPath) {
      base::log(LogLevel::kError, "--control {}: {} octets, a unix socket path holds at most {}",
                *flags.control, flags.control->size(), config::kMaxControlPath);
      return std::nullopt;
    }
    cfg.server.control = *flags.control;
  }
  if (flags.user) cfg.server.user = *flags.user;
  if (cfg.server.threads == 0) cfg.server.threads = cpus_available();
  return cfg;
}

// Opens one socket per worker and listen address. With port 0 the first socket's port is
// reused by the others so they share one SO_REUSEPORT group. Returns per-worker fd lists.
std::optional<std::vector<std::vector<int>>> open_sockets(config::ServerConfig& server) {
  std::vector<std::vector<int>> per_worker(server.threads);
  std::vector<base::Endpoint> bound;
  io::SocketOptions options = server.socket;
  options.tx_timestamps = server.interleaved;  // SO_TIMESTAMPING for interleaved mode
  // Every address first, before any of ours is bound: one that another process serves is
  // refused (our SO_REUSEPORT sockets would join its group and split its clients).
  for (const base::Endpoint& ep : server.listen) {
    if (const std::string e = io::check_address_free(ep, server.socket); !e.empty()) {
      base::log(LogLevel::kError, "{}", e);
      return std::nullopt;
    }
  }
  for (base::Endpoint ep : server.listen) {
    std::vector<int> fds;
    std::string error;
    for (unsigned w = 0; w < server.threads; ++w) {
      const int fd = io::open_server_socket(ep, options, error);
      if (fd < 0) break;
      if (ep.port == 0) ep.port = io::bound_endpoint(fd).port;
      fds.push_back(fd);
    }
    if (fds.size() != server.threads) {
      for (int fd : fds) ::close(fd);
      const bool v6 = ep.address.family == base::Family::kV6;
      if (server.listen_is_default && v6) {
        base::log(LogLevel::kWarning, "IPv6 unavailable, serving IPv4 only ({})", error);
        continue;
      }
      base::log(LogLevel::kError, "{}", error);
      return std::nullopt;
    }
    for (unsigned w = 0; w < server.threads; ++w) per_worker[w].push_back(fds[w]);
    bound.push_back(ep);
  }
  if (bound.empty()) {
    base::log(LogLevel::kError, "no address to listen on");
    return std::nullopt;
  }
  server.listen = bound;
  return per_worker;
}

// Switches to the user resolved at start (daemon::resolve_run_as: the configured one, else
// stratad if it exists, else nobody) and clears every capability (a stratad that systemd
// starts as its own user with CAP_NET_BIND_SERVICE keeps none after binding). Before any
// other thread starts: capabilities are per thread.
bool drop_privileges(const daemon::RunAs& who, const std::string& wanted) {
  const auto drop_capabilities = [] {
    if (const std::string e = daemon::drop_capabilities(); !e.empty()) {
      base::log(LogLevel::kError, "{}", e);
      return false;
    }
    return true;
  };
  if (::geteuid() != 0) {
    if (!wanted.empty()) base::log(LogLevel::kWarning, "not root: --user {} ignored", wanted);
    return drop_capabilities();
  }
  if (!who.drop) {
    base::log(LogLevel::kWarning, "running as root (user '{}'), without capabilities", who.name);
    return drop_capabilities();
  }
  if (::setgroups(0, nullptr) != 0 || ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
    base::log(LogLevel::kError, "cannot switch to user '{}': {}", who.name, std::strerror(errno));
    return false;
  }
  if (::setuid(0) == 0) {  // must be impossible now
    base::log(LogLevel::kError, "privilege drop failed: could regain root");
    return false;
  }
  base::log(LogLevel::kInfo, "running as user {} (uid {})", who.name, who.uid);
  return drop_capabilities();
}

const char* seccomp_text(config::Seccomp s) {
  switch (s) {
    case config::Seccomp::kKill: return "kill";
    case config::Seccomp::kLog: return "log";
    case config::Seccomp::kOff: return "off";
  }
  return "?";
}

// Re-reads the config file and publishes its access rules and rate limits; the client
// tables, counters and everything else stay. A broken file changes nothing. Parts that need
// a restart are reported and left as they are.
// `applied` is the configuration whose rules are in force (the start's, then each reload's):
// what changed is said against it.
// NTS: the cookie secrets in force and the KE server (null: NTS-KE off), for reloads.
struct NtsRuntime {
  std::shared_ptr<const nts::Secrets> secrets;
  nts::KeServer* ke = nullptr;
};

std::string describe_credentials(const nts::Credentials& c) {
  const time_t t = static_cast<time_t>(c.expires_unix());
  char when[32] = "?";
  tm utc{};
  if (gmtime_r(&t, &utc) != nullptr) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &utc);
  const double days =
      static_cast<double>(c.expires_unix() - base::now_real().time_since_epoch().count() / 1'000'000'000) / 86400;
  return fmt::format("{}, expires {} (in {:.0f} days)", c.subject(), when, days);
}

std::string describe_secrets(const nts::Secrets& s) {
  return fmt::format("{} secret{}, sealing with {}", s.secrets.size(), s.secrets.size() == 1 ? "" : "s",
                     nts::fingerprint(s.secrets[0]));
}

bool same_secrets(const nts::Secrets& a, const nts::Secrets& b) {
  if (a.secrets.size() != b.secrets.size()) return false;
  for (size_t i = 0; i < a.secrets.size(); ++i)
    if (a.secrets[i].bytes != b.secrets[i].bytes) return false;
  return true;
}

// Re-reads the NTS files on a reload: a broken one keeps what is in force and says why.
void reload_nts(const config::Config& next, NtsRuntime& nts_state, std::vector<std::string>& changes,
                std::vector<std::string>& warnings) {
  if (!nts_state.secrets) return;
  const nts::SecretsResult r = nts::load_secrets(next.nts.secret, false);
  if (!r.secrets) {
    warnings.push_back(fmt::format("nts: {}; the cookie secrets in force stay", r.error));
  } else if (!same_secrets(*r.secrets, *nts_state.secrets)) {
    nts_state.secrets = r.secrets;
    changes.push_back(fmt::format("nts: secrets from {}: {}", next.nts.secret, describe_secrets(*r.secrets)));
  }
  if (nts_state.ke == nullptr) return;
  nts_state.ke->set_secrets(nts_state.secrets, next.nts.keys);
  const nts::CredentialsResult c = nts::load_credentials(next.nts.certificate, next.nts.key);
  if (!c.credentials) {
    warnings.push_back(fmt::format("nts-ke: {}; the certificate in force stays", c.error));
    return;
  }
  const auto old = nts_state.ke->credentials();
  nts_state.ke->set_credentials(c.credentials);
  changes.push_back(fmt::format("nts-ke: certificate {} loaded for new handshakes: {}", next.nts.certificate,
                                describe_credentials(*c.credentials)));
}

// [networks]: the databases opened (at start and on every reload: a file replaced under the
// same name is read again), published for the control and metrics threads.
std::string open_networks(const config::NetworksConfig& c, policy::NetworksCell& cell) {
  if (!c.enabled()) {
    cell.set(nullptr);
    return "";
  }
  std::string error;
  auto db = policy::NetworkDb::open(c.asn, c.country, error);
  if (!db) return error;
  cell.set(std::move(db));
  return "";
}

// The prefix the sockets (and the XDP program) steer by: the rate limiter's, or a block
// rule's when it is shorter, so that a worker sees every request of each prefix it meters.
int steering_bits(const config::Config& c, base::Family family) {
  return family == base::Family::kV4 ? c.blocks.shortest_v4(c.ratelimit.v4_prefix)
                                     : c.blocks.shortest_v6(c.ratelimit.v6_prefix);
}

// The blocks' state file ([clients] state_dir/blocks).
std::string blocks_path(const config::Config& cfg) {
  return cfg.clients.state_dir.empty() ? "" : cfg.clients.state_dir + "/blocks";
}

nlohmann::json reload(const Flags& flags, const config::Config& running, config::Config& applied,
                      server::RulesCell& cell, NtsRuntime& nts_state, policy::NetworksCell& networks,
                      policy::BlockBook& blocks) {
  std::vector<std::string> errors;
  if (flags.config_path.empty()) errors.push_back("stratad was started without --config");
  std::optional<config::Config> next;
  std::vector<std::string> warnings;
  if (errors.empty()) next = build_config(flags, &errors, &warnings);
  // An empty file where the rules in force came from a non-empty one is most likely caught
  // in the middle of a rewrite: refused (a file of comments only means "no rules").
  if (next) {
    const auto empty_file = [](const std::string& path) {
      std::error_code ec;
      return !path.empty() && std::filesystem::file_size(path, ec) == 0 && !ec;
    };
    const auto from_file = [](const config::Config& c) {
      return std::count_if(c.access.rules.begin(), c.access.rules.end(),
                           [&](const policy::Rule& r) { return r.file == c.access.file; });
    };
    if (next->access.file == applied.access.file && empty_file(next->access.file) && from_file(applied) > 0)
      errors.push_back(fmt::format("{} is empty where it held {} rules: refused (caught while being "
                                   "rewritten? a file of comments only means no rules)",
                                   next->access.file, from_file(applied)));
    if (next->auth.keys_file == applied.auth.keys_file && empty_file(next->auth.keys_file) &&
        !applied.auth.keys.empty())
      errors.push_back(fmt::format("{} is empty where it held {} keys: refused", next->auth.keys_file,
                                   applied.auth.keys.size()));
    if (!errors.empty()) next.reset();
  }
  if (!next) {
    for (const auto& e : errors) base::log(LogLevel::kError, "reload: {}", e);
    base::log(LogLevel::kError, "reload refused: the running configuration stays");
    return {{"ok", false}, {"error", "configuration has errors; nothing changed"}, {"errors", errors}};
  }
  if (next->server.threads == 0) next->server.threads = running.server.threads;
  std::vector<std::string> restart;
  if (!(next->server == running.server)) restart.push_back("[server]");
  if (!(next->time == running.time)) restart.push_back("[time]");
  if (!(next->clients == running.clients)) restart.push_back("[clients]");
  if (!(next->metrics == running.metrics)) restart.push_back("[metrics]");
  if (!(next->cost == running.cost)) restart.push_back("[cost]");
  if (!(next->mode6 == running.mode6)) restart.push_back("[mode6]");
  if (!(next->xdp == running.xdp)) restart.push_back("[xdp]");
  if (next->ratelimit.v4_prefix != running.ratelimit.v4_prefix ||
      next->ratelimit.v6_prefix != running.ratelimit.v6_prefix)
    restart.push_back("[ratelimit] v4_prefix/v6_prefix (the sockets steer by them)");
  {
    // [nts]: the files and key periods reload; the rest is read at start.
    config::NtsConfig a = next->nts, b = running.nts;
    a.certificate = b.certificate;
    a.key = b.key;
    a.secret = b.secret;
    a.secret_is_default = b.secret_is_default;
    a.keys = b.keys;
    if (!(a == b)) restart.push_back("[nts] (but certificate, key, secret, rotate and keep, which reload)");
    if (next->nts.enabled() != running.nts.enabled() || next->nts.ke() != running.nts.ke())
      restart.push_back("[nts] switched on or off");
  }
  std::vector<std::string> changes = config::reload_changes(applied, *next);
  // [blocks]: rules, exclusions and the cap reload, unless a rule's prefix is shorter than
  // the steering's (every request of a metered prefix must reach one worker).
  bool blocks_apply = true;
  if (next->blocks.table_size != running.blocks.table_size) restart.push_back("[blocks] table_size");
  for (const base::Family f : {base::Family::kV4, base::Family::kV6}) {
    if (steering_bits(*next, f) < steering_bits(running, f)) {
      restart.push_back(fmt::format("[[blocks.rule]] with an IPv{} prefix shorter than the /{} the sockets steer by "
                                    "(the [blocks] in force stay)",
                                    f == base::Family::kV4 ? 4 : 6, steering_bits(running, f)));
      blocks_apply = false;
    }
  }
  if (blocks_apply && !(next->blocks == applied.blocks)) {
    blocks.configure(next->blocks);
    changes.push_back(fmt::format("[blocks]: {} rules{}, {} exclusions, at most {} active", next->blocks.rules.size(),
                                  next->blocks.enabled ? "" : " (off)", next->blocks.exclude.size(),
                                  next->blocks.max_active));
  }
  reload_nts(*next, nts_state, changes, warnings);
  if (const std::string e = open_networks(next->networks, networks); !e.empty())
    warnings.push_back("[networks]: " + e + "; the databases in force stay");
  else if (next->networks.enabled())
    changes.push_back("[networks] read again: " + networks.get()->describe());
  else if (applied.networks.enabled())
    changes.push_back("[networks] off");
  for (const auto& w : warnings) base::log(LogLevel::kWarning, "reload: {}", w);
  auto rules = config::make_rules(*next);
  rules->nts_secrets = nts_state.secrets;
  rules->limits.v4_prefix = running.ratelimit.v4_prefix;
  rules->limits.v6_prefix = running.ratelimit.v6_prefix;
  const size_t count = rules->policy.rule_count();
  const size_t keys = rules->keys.size();
  const bool freed = cell.publish(std::move(rules), std::chrono::seconds(2));
  for (const auto& r : restart)
    base::log(LogLevel::kWarning, "reload: {} changed; it takes effect at the next restart", r);
  base::log(LogLevel::kInfo, "reloaded {}: {} access rules, {} keys, rate limiting {}; {}",
            flags.config_path, count, keys, next->ratelimit.enabled ? "on" : "off",
            changes.empty() ? std::string("nothing changed") : fmt::format("{} changes", changes.size()));
  for (const auto& c : changes) base::log(LogLevel::kInfo, "reload: {}", c);
  if (!freed) base::log(LogLevel::kWarning, "reload: a worker did not take the new rules yet");
  // What a reload applies is remembered; the parts that need a restart stay as running.
  applied.access = next->access;
  applied.auth = next->auth;
  applied.ratelimit = next->ratelimit;
  applied.ratelimit.v4_prefix = running.ratelimit.v4_prefix;
  applied.ratelimit.v6_prefix = running.ratelimit.v6_prefix;
  applied.nts = next->nts;
  applied.networks = next->networks;
  if (blocks_apply) {
    applied.blocks = next->blocks;
    applied.blocks.table_size = running.blocks.table_size;
  }
  return {{"ok", true}, {"rules", count}, {"keys", keys}, {"ratelimit", next->ratelimit.enabled},
          {"changes", changes}, {"warnings", warnings}, {"needs_restart", restart}};
}

// The workers' sketches and summaries, for the control and metrics threads.
using Trackers = std::vector<std::unique_ptr<clients::Tracker>>;
std::vector<const clients::UniqueCounter*> unique_counters(const Trackers& trackers) {
  std::vector<const clients::UniqueCounter*> out;
  for (const auto& t : trackers) out.push_back(&t->unique());
  return out;
}
std::vector<const clients::TopTalkers*> top_talkers(const Trackers& trackers) {
  std::vector<const clients::TopTalkers*> out;
  for (const auto& t : trackers) out.push_back(&t->top());
  return out;
}
std::vector<const clients::ClientTable*> client_tables(const Trackers& trackers) {
  std::vector<const clients::ClientTable*> out;
  for (const auto& t : trackers) out.push_back(&t->table());
  return out;
}

int64_t unix_seconds() { return base::now_real().time_since_epoch().count() / 1'000'000'000; }

// The unique-client sketches in the state directory: written every minute and at stop
// (atomically: a temporary file renamed), read at start.
std::string sketch_path(const config::Config& cfg) {
  return cfg.clients.state_dir.empty() ? "" : cfg.clients.state_dir + "/unique-sketches.json";
}

// A state file written atomically (a temporary file of a random name, never one planted
// there, synced, renamed over; on failure it is removed and the previous file stays as it
// was). A full disk fails every save until space is freed: a few lines per kind of file,
// then one a minute, and one when saving works again.
// Counted for /metrics (strata_state_saves_total, ..._failures_total, ..._last_save_timestamp_seconds):
// saves run on the main thread (the blocks' also on the control thread, under their mutex),
// the metrics thread reads.
struct StateSaver {
  const char* what;
  const char* file;  // the metrics' label
  base::LogLimiter failures{3, std::chrono::seconds(60)};
  uint64_t failed = 0;
  std::atomic<uint64_t> saves{0}, failures_total{0};
  std::atomic<int64_t> last_save_unix{0};
  void save(const std::string& path, std::string_view data) {
    if (const std::string e = base::write_file_atomically(path, data); !e.empty()) {
      ++failed;
      failures_total.fetch_add(1, std::memory_order_relaxed);
      failures.log(LogLevel::kWarning, "saving the {}: {} (the previous save stays; retried every "
                                       "save_interval)", what, e);
      return;
    }
    saves.fetch_add(1, std::memory_order_relaxed);
    last_save_unix.store(unix_seconds(), std::memory_order_relaxed);
    if (failed > 0) {
      base::log(LogLevel::kInfo, "saved the {} to {} again after {} failed saves", what, path, failed);
      failed = 0;
    }
  }
};
StateSaver sketch_saver{"unique-client sketches", "sketches"};
StateSaver history_saver{"history", "history"};
StateSaver blocks_saver{"blocks", "blocks"};

void save_sketches(const std::string& path,
                   const Trackers& trackers) {
  if (path.empty()) return;
  const int64_t now_s = unix_seconds();
  const auto doc =
      control::sketches_json(control::collect_sketches(unique_counters(trackers), now_s), true, now_s);
  sketch_saver.save(path, control::json_text(doc) + "\n");
}

// The history ([clients] state_dir/history): saved with the sketches, read at start.
std::string history_path(const config::Config& cfg) {
  return cfg.clients.state_dir.empty() ? "" : cfg.clients.state_dir + "/history";
}

void save_history(const std::string& path, const stats::History& history) {
  if (path.empty()) return;
  history_saver.save(path, history.serialize());
}

// A state file to read at start: open, or (there but unreadable: permissions) renamed
// .unreadable, so the next save's rename cannot hide it, and said, with what starting
// without it means; or not there (first start). False when there is nothing to read.
bool open_state_file(const std::string& path, std::ifstream& in, const char* without) {
  if (path.empty()) return false;
  in.open(path, std::ios::binary);
  if (in) return true;
  const int e = errno;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return false;  // first start
  const std::string aside = path + ".unreadable";
  std::filesystem::rename(path, aside, ec);
  base::log(LogLevel::kWarning, "cannot read {}: {}; starting {}{}", path, std::strerror(e), without,
            ec ? "" : "; kept as " + aside);
  return false;
}

// A state file that does not check out: kept aside for the operator as .damaged, not
// overwritten by the next save.
void set_aside_damaged(const std::string& path, const std::string& why, const char* without) {
  const std::string aside = path + ".damaged";
  std::error_code ec;
  std::filesystem::rename(path, aside, ec);
  base::log(LogLevel::kWarning, "ignoring {}: {}; starting {}; {}", path, why, without,
            ec ? "it stays there (cannot rename it: " + ec.message() + ")" : "kept as " + aside);
}

void load_history(const std::string& path, stats::History& into) {
  std::ifstream in;
  if (!open_state_file(path, in, "with an empty history")) return;
  std::ostringstream data;
  data << in.rdbuf();
  std::string error;
  if (!into.parse(data.str(), error)) {
    set_aside_damaged(path, error, "with an empty history");
    return;
  }
  const int64_t last = into.last_second();
  if (last == std::numeric_limits<int64_t>::min())  // saved before its first second
    base::log(LogLevel::kInfo, "restored the history from {} (no second in it yet)", path);
  else
    base::log(LogLevel::kInfo, "restored the history from {} (last second {} s ago)", path,
              unix_seconds() - last);
}

void save_blocks(const std::string& path, const policy::BlockBook& book) {
  if (path.empty()) return;
  blocks_saver.save(path, book.serialize(unix_seconds()));
}

void load_blocks(const std::string& path, policy::BlockBook& into) {
  std::ifstream in;
  if (!open_state_file(path, in, "with no blocks")) return;
  std::stringstream text;
  text << in.rdbuf();
  if (const std::string error = into.restore(text.str(), unix_seconds()); !error.empty()) {
    set_aside_damaged(path, error, "with no blocks");
    return;
  }
  base::log(LogLevel::kInfo, "restored {} active blocks from {}", into.counts().active, path);
}

void load_sketches(const std::string& path, clients::Tracker& into) {
  std::ifstream in;
  if (!open_state_file(path, in, "without its sketches")) return;
  try {
    const auto doc = nlohmann::json::parse(in);
    const int64_t now_s = unix_seconds();
    size_t restored = 0;
    std::vector<std::string> skipped;  // one damaged entry costs itself only
    for (const auto& e : control::parse_sketches(doc, &skipped)) {
      const int64_t len = clients::window_seconds(e.window);
      const int64_t number = e.start / len;
      if (number != now_s / len && number != now_s / len - 1) continue;  // too old to show
      into.unique().restore(e.window, e.kind, number, *e.sketch);
      ++restored;
    }
    for (const auto& s : skipped) base::log(LogLevel::kWarning, "{}: skipped {}", path, s);
    base::log(LogLevel::kInfo, "restored {} unique-client sketches from {}", restored, path);
  } catch (const std::exception& e) {
    set_aside_damaged(path, e.what(), "without its sketches");
  }
}

// What ntpq's mode 6 reads: the counters and time state (through `snapshot`), the client
// tables, and who we are.
class DaemonSources final : public mode6::Sources {
 public:
  DaemonSources(std::function<control::StatsSnapshot()> snapshot, const Trackers& trackers,
                const config::Config& cfg, size_t receive_buffers)
      : snapshot_(std::move(snapshot)), trackers_(trackers), cfg_(cfg), receive_buffers_(receive_buffers) {
    utsname u{};
    if (::uname(&u) == 0) {
      processor_ = u.machine;
      system_ = std::string(u.sysname) + "/" + u.release;
    }
    if (cfg.time.source == clock::Source::kMirror) {
      peer_ = cfg.time.mirror.to_string();
      poll_ = static_cast<int>(std::lround(std::log2(std::max(1.0, cfg.time.mirror_interval))));
    }
  }

  mode6::SystemView system() override {
    const control::StatsSnapshot s = snapshot_();
    mode6::SystemView v;
    v.time = s.time;
    v.now = base::to_ntp(base::now_real());
    v.uptime_s = s.uptime_s;
    v.counters = s.counters;
    v.control_requests = s.counters[stats::index(stats::Counter::control_requests)];
    v.mru_depth = s.clients.records;
    v.mru_capacity = s.clients.capacity;
    v.mru_mindepth = cfg_.clients.mindepth;
    v.mru_maxage_s = cfg_.clients.maxage;
    v.mru_memory_bytes = s.clients.records * clients::kClientSlotBytes;
    v.mru_max_memory_bytes = s.clients.memory_bytes;
    v.mru_oldest_age_s = [this] {
      int64_t oldest = INT64_MAX;
      for (const auto& t : trackers_)
        t->table().for_each([&](const clients::ClientSnapshot& c) { oldest = std::min(oldest, c.last_ns); });
      if (oldest == INT64_MAX) return 0.0;
      return std::max<double>(0, (base::now_real().time_since_epoch().count() - oldest) * 1e-9);
    };
    v.receive_buffers = receive_buffers_;
    v.version = std::string("stratad ") + STRATA_VERSION;
    v.processor = processor_;
    v.system = system_;
    if (!peer_.empty()) {
      v.peer_address = peer_;
      v.peer_mode = 3;
    }
    v.poll_exponent = poll_;
    timex tx{};
    if (::adjtimex(&tx) >= 0) v.tai_offset = tx.tai;
    return v;
  }

  void client_entries(std::vector<mode6::MruEntry>& out) override {
    for_each_client([&](const mode6::MruEntry& e) { out.push_back(e); });
  }

  // Streamed from the tables (seqlock reads): an mrulist walk keeps only what it selects.
  void for_each_client(const std::function<void(const mode6::MruEntry&)>& visit) override {
    for (const auto& t : trackers_) {
      t->table().for_each([&](const clients::ClientSnapshot& c) {
        mode6::MruEntry e;
        e.address = c.address;
        e.local = c.local;
        e.first = base::to_ntp(base::RealTime{base::Nanos{c.first_ns}}).raw;
        e.last = base::to_ntp(base::RealTime{base::Nanos{c.last_ns}}).raw;
        e.count = c.count;
        e.drops = c.drops;
        e.mode_version = static_cast<uint8_t>(c.version << 3 | c.mode);
        e.restrict = static_cast<uint16_t>(((c.flags & clients::kFlagLimited) ? mode6::kResLimited : 0) |
                                           ((c.flags & clients::kFlagKod) ? mode6::kResKod : 0) |
                                           ((c.flags & clients::kFlagDenied) ? mode6::kResNoServe : 0));
        visit(e);
      });
    }
  }

 private:
  std::function<control::StatsSnapshot()> snapshot_;
  const Trackers& trackers_;
  const config::Config& cfg_;
  size_t receive_buffers_;
  std::string processor_ = "unknown", system_ = "unknown", peer_;
  int poll_ = 6;
};

// The files stratad needs after the privilege drop, checked as the user it will run as:
// one message per problem.
std::vector<std::string> check_files(const Flags& flags, const config::Config& cfg,
                                     const daemon::RunAs& who) {
  std::vector<daemon::FileNeed> needs;
  if (!flags.config_path.empty())
    needs.push_back({std::filesystem::absolute(flags.config_path).string(), "the config file", false});
  if (!cfg.access.file.empty()) needs.push_back({cfg.access.file, "[access] file", false});
  if (!cfg.auth.keys_file.empty()) needs.push_back({cfg.auth.keys_file, "[auth] keys", false});
  if (!cfg.clients.state_dir.empty())
    needs.push_back({cfg.clients.state_dir, "[clients] state_dir", true});
  // NTS: reloads read these as that user (a secrets file stratad is about to create is made
  // that user's).
  if (cfg.nts.ke()) {
    needs.push_back({cfg.nts.certificate, "[nts] certificate", false});
    needs.push_back({cfg.nts.key, "[nts] key", false});
  }
  std::error_code ec;
  if (cfg.nts.enabled() && std::filesystem::exists(cfg.nts.secret, ec))
    needs.push_back({cfg.nts.secret, "[nts] secret", false});
  return daemon::check_files_as(who, needs);
}

int run(const Flags& flags) {
  if (flags.verbose) base::set_log_level(LogLevel::kDebug);
  std::optional<config::Config> cfg = build_config(flags);
  if (!cfg) return 1;
  std::string user_error;
  const auto run_as = daemon::resolve_run_as(cfg->server.user, user_error);
  if (!run_as) {
    base::log(LogLevel::kError, "{}", user_error);
    return 1;
  }
  // The client memory must exist: tables are sized from it at start (a "1TiB" ended in
  // std::bad_alloc after --check-config had passed it).
  const uint64_t physical = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (physical > 0 && cfg->clients.memory > physical) {
    base::log(LogLevel::kError, "[clients] memory = {:.1f} GiB is more than this machine's {:.1f} GiB",
              static_cast<double>(cfg->clients.memory) / (1ull << 30), static_cast<double>(physical) / (1ull << 30));
    return 1;
  }
  if (const auto problems = check_files(flags, *cfg, *run_as); !problems.empty()) {
    for (const auto& p : problems) base::log(LogLevel::kError, "{}", p);
    return 1;
  }
  // NTS: the certificate and the cookie secrets (the secrets file is made on the first start).
  std::shared_ptr<const nts::Credentials> nts_credentials;
  NtsRuntime nts_state;
  if (cfg->nts.ke()) {
    nts::CredentialsResult c = nts::load_credentials(cfg->nts.certificate, cfg->nts.key);
    if (!c.credentials) {
      base::log(LogLevel::kError, "nts-ke: {}", c.error);
      return 1;
    }
    nts_credentials = std::move(c.credentials);
  }
  if (cfg->nts.enabled()) {
    const nts::SecretsResult r = nts::load_secrets(cfg->nts.secret, !flags.check_config);
    std::error_code ec;
    if (!r.secrets && !(flags.check_config && !std::filesystem::exists(cfg->nts.secret, ec))) {
      base::log(LogLevel::kError, "nts: {}", r.error);
      return 1;
    }
    if (r.created && run_as->drop && ::chown(cfg->nts.secret.c_str(), run_as->uid, run_as->gid) != 0)
      base::log(LogLevel::kWarning, "chown {}: {}", cfg->nts.secret, std::strerror(errno));
    if (r.created)
      base::log(LogLevel::kInfo, "nts: created {} with a new random secret (give the same file to every "
                                 "server that should accept this one's cookies)", cfg->nts.secret);
    nts_state.secrets = r.secrets;
  }
  if (flags.check_config) {
    std::string listen;
    for (const auto& ep : cfg->server.listen) listen += (listen.empty() ? "" : ", ") + ep.to_string();
    std::string nts_text = "off";
    if (nts_credentials) nts_text = "KE with " + describe_credentials(*nts_credentials);
    else if (cfg->nts.enabled()) nts_text = "NTP only (KE elsewhere)";
    if (cfg->nts.enabled())
      nts_text += nts_state.secrets ? "; " + describe_secrets(*nts_state.secrets)
                                    : "; " + cfg->nts.secret + " will be created at start";
    fmt::print("configuration OK: listen {}; {} thread{}; time source {}; nts {}\n", listen,
               cfg->server.threads, cfg->server.threads == 1 ? "" : "s",
               clock::source_name(cfg->time.source), nts_text);
    return 0;
  }

  // Signals are taken synchronously by the main thread; every thread inherits this mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto sockets = open_sockets(cfg->server);
  if (!sockets) return 1;
  const unsigned n = cfg->server.threads;
  // One client, one worker: steer each reuseport group by the rate-limit prefix of the
  // source address (io/steering.h), so per-worker tables see all of a client's requests. The
  // program picks among the first n sockets only, so a socket that another process of our
  // user adds to the group later gets no traffic; with one worker it is attached for that
  // alone.
  for (size_t k = 0; k < cfg->server.listen.size(); ++k) {
    const base::Family family = cfg->server.listen[k].address.family;
    const int bits = steering_bits(*cfg, family);
    if (const std::string e = io::attach_steering((*sockets)[0][k], family, bits, n); !e.empty()) {
      if (n == 1) {
        base::log(LogLevel::kWarning, "reuseport program on {}: {}", cfg->server.listen[k].to_string(), e);
        continue;
      }
      base::log(LogLevel::kError, "steering clients to workers on {}: {} (run with --threads 1)",
                cfg->server.listen[k].to_string(), e);
      return 1;
    }
  }
  // The AF_XDP path (root needed: before the drop). Whatever it cannot serve, the sockets do.
  std::unique_ptr<io::XdpPath> xdp_path;
  if (cfg->server.backend == io::BackendKind::kXdp) {
    io::XdpOptions o;
    o.interfaces = cfg->xdp.interfaces;
    o.queues = cfg->xdp.queues;
    o.mode = cfg->xdp.mode;
    o.zerocopy = cfg->xdp.zerocopy;
    o.busy_poll = cfg->xdp.busy_poll;
    bool wildcard = false;
    for (const base::Endpoint& ep : cfg->server.listen) {
      if (std::find(o.ports.begin(), o.ports.end(), ep.port) == o.ports.end()) o.ports.push_back(ep.port);
      if (ep.address.is_unspecified()) wildcard = true;
      else o.locals.push_back(ep.address);
    }
    if (wildcard) o.locals.clear();  // every address of the host
    if (o.ports.size() > 4) base::log(LogLevel::kWarning, "xdp: only the first 4 ports are served over AF_XDP");
    o.v4_prefix = steering_bits(*cfg, base::Family::kV4);
    o.v6_prefix = steering_bits(*cfg, base::Family::kV6);
    o.workers = n;
    o.batch = cfg->server.batch;
    if (const char* omit = std::getenv("STRATA_TEST_XDP_OMIT_WORKER")) o.omit_worker = std::atoi(omit);
    xdp_path = io::XdpPath::open(o);
    if (xdp_path)
      for (const std::string& line : xdp_path->served()) base::log(LogLevel::kInfo, "xdp {}", line);
  }
  control::ControlServer control_server;
  if (!cfg->server.control.empty()) {
    const std::filesystem::path dir = std::filesystem::path(cfg->server.control).parent_path();
    std::error_code ec;
    const bool dir_existed = dir.empty() || std::filesystem::exists(dir, ec);
    if (const std::string e = control_server.bind(cfg->server.control); !e.empty()) {
      base::log(LogLevel::kError, "{}", e);
      return 1;
    }
    // A directory stratad made for its socket is the run-as user's, so that the socket file
    // can be removed at stop after the privilege drop (unlinking needs the directory).
    if (!dir_existed && run_as->drop && ::chown(dir.c_str(), run_as->uid, run_as->gid) != 0)
      base::log(LogLevel::kWarning, "chown {}: {}", dir.string(), std::strerror(errno));
  }
  // The metrics endpoint binds now (before the privilege drop) and serves once the workers
  // exist (after the drop: every thread starts without privileges).
  std::unique_ptr<control::MetricsServer> metrics_server;
  if (cfg->metrics.listen) {
    metrics_server = std::make_unique<control::MetricsServer>();
    if (const std::string e = metrics_server->bind(*cfg->metrics.listen); !e.empty()) {
      base::log(LogLevel::kError, "{}", e);
      return 1;
    }
  }
  clock::TimeStateCell time_cell;
  clock::ClockService clock_service(cfg->time, time_cell);
  const unsigned n_workers = cfg->server.threads;
  // One reader slot per worker, one for the control service (mode 6), one for NTS-KE's
  // acceptor (access rules).
  auto initial_rules = config::make_rules(*cfg);
  initial_rules->nts_secrets = nts_state.secrets;
  server::RulesCell rules_cell(std::move(initial_rules), n_workers + 2);
  // NTS-KE binds now too; its threads start after the drop.
  std::unique_ptr<clients::Tracker> ke_tracker;
  std::unique_ptr<nts::KeServer> ke_server;
  if (cfg->nts.ke()) {
    clients::TrackerOptions o;
    o.table.capacity = 65536;
    o.table.mindepth = 0;
    o.prefix_capacity = 16384;
    o.seed = std::random_device{}();
    ke_tracker = std::make_unique<clients::Tracker>(o);
    nts::KeOptions ke;
    ke.listen = cfg->nts.listen;
    ke.listen_is_default = cfg->nts.listen_is_default;
    ke.threads = cfg->nts.ke_threads;
    ke.max_connections = cfg->nts.max_connections;
    ke.timeout_s = cfg->nts.timeout;
    ke.cookies = cfg->nts.cookies;
    ke.ntp_server = cfg->nts.ntp_server;
    ke.ntp_port = cfg->nts.ntp_port;
    ke.limits.enabled = cfg->nts.ke_interval > 0;
    ke.limits.v4_prefix = cfg->ratelimit.v4_prefix;
    ke.limits.v6_prefix = cfg->ratelimit.v6_prefix;
    ke.limits.interval_s = cfg->nts.ke_interval > 0 ? cfg->nts.ke_interval : 1;
    ke.limits.burst = cfg->nts.ke_burst;
    ke.limits.min_spacing_s = 0;
    ke.limits.leak = 0;
    ke.limits.kod = false;
    const size_t slot = n_workers + 1;
    ke_server = std::make_unique<nts::KeServer>(ke, *ke_tracker, [&rules_cell, slot](const base::IpAddress& a) {
      const server::Rules* r = rules_cell.acquire(slot);
      const policy::Verdict v = r->policy.lookup(a);
      rules_cell.release(slot);
      return v.access != policy::Access::kIgnore && v.access != policy::Access::kDeny;
    });
    if (const std::string e = ke_server->bind(); !e.empty()) {
      base::log(LogLevel::kError, "{}", e);
      return 1;
    }
    ke_server->set_credentials(nts_credentials);
    ke_server->set_secrets(nts_state.secrets, cfg->nts.keys);
    nts_state.ke = ke_server.get();
  }
  if (!drop_privileges(*run_as, cfg->server.user)) return 1;
  clock_service.start();

  std::vector<std::unique_ptr<server::WorkerStats>> stats;
  std::vector<std::unique_ptr<io::Backend>> backends;
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  server::WorkerOptions worker_options;
  worker_options.batch = cfg->server.batch;
  worker_options.unsynchronised = cfg->time.unsynchronised;
  worker_options.busy_poll = std::chrono::microseconds(cfg->server.busy_poll_us);
  worker_options.nts = cfg->nts.enabled();
  // The client memory budget is split evenly: steering spreads clients evenly.
  clients::TrackerOptions tracker_options;
  tracker_options.limits = cfg->ratelimit;
  tracker_options.table.mindepth = cfg->clients.mindepth / n;
  tracker_options.table.maxage_ns = static_cast<int64_t>(cfg->clients.maxage * 1e9);
  tracker_options = clients::size_for_memory(cfg->clients.memory / n, tracker_options);
  // The configuration in force for reloads to compare with; SIGHUP (main thread) and `strata
  // reload` (control thread) take turns.
  config::Config applied = *cfg;
  std::mutex reload_mutex;
  server::ControlQueue control_queue(n);
  std::vector<std::unique_ptr<clients::Tracker>> trackers;
  std::vector<std::unique_ptr<clients::InterleaveTable>> interleave_tables;
  std::random_device random;
  for (unsigned w = 0; w < n; ++w) {
    stats.push_back(std::make_unique<server::WorkerStats>());
    auto udp = std::make_unique<io::UdpBackend>((*sockets)[w], cfg->server.batch);
    if (xdp_path && !xdp_path->sockets_of(w).empty())
      backends.push_back(std::make_unique<io::XdpBackend>(std::move(udp), (*sockets)[w].size(),
                                                          xdp_path->sockets_of(w), cfg->server.batch,
                                                          &stats.back()->counters));
    else
      backends.push_back(std::move(udp));
    tracker_options.seed = (uint64_t{random()} << 32) | random();
    trackers.push_back(std::make_unique<clients::Tracker>(tracker_options));
    if (cfg->server.interleaved)
      interleave_tables.push_back(std::make_unique<clients::InterleaveTable>(cfg->server.interleaved_entries / n));
  }
  // The control service counts in a block of its own (the last), summed with the workers'.
  stats.push_back(std::make_unique<server::WorkerStats>());
  load_sketches(sketch_path(*cfg), *trackers[0]);
  // The history of the main series (fixed memory: see stats/history.h), restored from the
  // state directory; [cost] prices its cost series.
  stats::History history;
  load_history(history_path(*cfg), history);
  policy::NetworksCell networks_cell;
  if (const std::string e = open_networks(cfg->networks, networks_cell); !e.empty())
    base::log(LogLevel::kWarning, "[networks]: {}; clients are not attributed to networks", e);
  else if (const auto db = networks_cell.get())
    base::log(LogLevel::kInfo, "networks: {}", db->describe());
  std::optional<stats::Provider> cost_provider;
  // The history's latest cost_month sample, for /metrics (NaN: none yet, or no [cost]).
  std::atomic<double> last_cost_month{std::numeric_limits<double>::quiet_NaN()};
  if (cfg->cost.enabled()) {
    std::string error;
    cost_provider = stats::choose_provider(cfg->cost.provider, cfg->cost.prices, cfg->cost.price, error);
    if (!cost_provider) base::log(LogLevel::kWarning, "[cost]: {}; the history has no cost series", error);
  }
  size_t client_memory = 0;
  for (const auto& t : trackers) client_memory += t->table().memory_bytes() + t->prefixes().memory_bytes();
  if (!interleave_tables.empty())
    base::log(LogLevel::kInfo, "interleaved mode: {} transmit timestamps per worker, {:.1f} MiB in all",
              interleave_tables[0]->capacity(),
              static_cast<double>(interleave_tables[0]->memory_bytes() * n) / (1 << 20));
  base::log(LogLevel::kInfo,
            "client table: {} records and {} rate-limit prefixes per worker, {:.1f} MiB in all",
            tracker_options.table.capacity, tracker_options.prefix_capacity,
            static_cast<double>(client_memory) / (1 << 20));
  // Dynamic blocks: the book (main and control threads), the set the workers read, and per
  // worker a meter of the rules' rates and a ring of events (policy/blocks.h).
  policy::BlockBook block_book(n);
  block_book.configure(cfg->blocks);
  load_blocks(blocks_path(*cfg), block_book);
  server::BlocksCell blocks_cell(block_book.build_set(), n);
  std::vector<std::unique_ptr<clients::BlockMeter>> meters;
  std::vector<std::unique_ptr<clients::BlockEvents>> block_events;
  for (unsigned w = 0; w < n; ++w) {
    meters.push_back(std::make_unique<clients::BlockMeter>(cfg->blocks.table_size, (uint64_t{random()} << 32) | random()));
    block_events.push_back(std::make_unique<clients::BlockEvents>());
  }
  // The main thread (events, expiry) and the control thread (strata block) both publish:
  // taking the set and publishing it go together, or an older set could land last.
  std::mutex blocks_publish_mutex;
  const auto publish_blocks = [&] {
    std::lock_guard lock(blocks_publish_mutex);
    if (auto set = block_book.take_set()) {
      if (!blocks_cell.publish(std::move(set), std::chrono::milliseconds(200)))
        base::log(LogLevel::kDebug, "blocks: a worker did not take the new set yet");
    }
  };
  const auto persist_blocks = [&] {
    std::lock_guard lock(blocks_publish_mutex);
    save_blocks(blocks_path(*cfg), block_book);
  };
  const auto block_events_lost = [&] {
    uint64_t lost = 0;
    for (const auto& ring : block_events) lost += ring->lost();
    return lost;
  };
  base::log(LogLevel::kInfo, "blocks: {} rules{}, {} active; the sockets steer by IPv4 /{} and IPv6 /{}; "
            "{:.1f} MiB of meters mapped ({} prefixes per rule per worker)",
            cfg->blocks.rules.size(), cfg->blocks.enabled ? "" : " (off)", block_book.counts().active,
            steering_bits(*cfg, base::Family::kV4), steering_bits(*cfg, base::Family::kV6),
            static_cast<double>(meters[0]->memory_bytes() * n) / (1 << 20), cfg->blocks.table_size);
  for (unsigned w = 0; w < n; ++w) {
    threads.emplace_back([&, w] {
      server::WorkerOptions options = worker_options;
      options.tracker = trackers[w].get();
      options.interleave = interleave_tables.empty() ? nullptr : interleave_tables[w].get();
      options.rules = &rules_cell;
      options.blocks = &blocks_cell;
      options.meter = meters[w].get();
      options.block_events = block_events[w].get();
      options.reader = w;
      options.control = cfg->mode6.enabled ? &control_queue : nullptr;
      server::Worker worker(*backends[w], time_cell, *stats[w], options);
      worker.run(stop);
    });
  }

  const base::Nanos started = base::now_mono();
  // Everything the workers count, summed on read (control and metrics threads).
  auto snapshot = [&] {
    control::StatsSnapshot s;
    for (const auto& ws : stats) {
      for (size_t i = 0; i < stats::kCounterCount; ++i)
        s.counters[i] += ws->counters.get(static_cast<stats::Counter>(i));
      ws->processing_ns.add_to(s.processing_ns);
      ws->poll_interval_ms.add_to(s.poll_interval_ms);
    }
    if (xdp_path) xdp_path->add_counters(s.counters);
    if (ke_server) {
      ke_server->add_counters(s.counters);
      ke_server->add_durations(s.nts_ke_ns);
      if (const auto c = ke_server->credentials())
        s.nts_certificate_expiry_s = static_cast<double>(c->expires_unix() - unix_seconds());
    }
    if (cfg->nts.enabled()) {
      const int64_t rotate = std::max<int64_t>(1, cfg->nts.keys.rotate_s);
      const int64_t now_s = unix_seconds();
      s.nts_key_age_s = static_cast<double>(now_s - nts::period_of(now_s, cfg->nts.keys) * rotate);
    }
    s.uptime_s = std::chrono::duration<double>(base::now_mono() - started).count();
    s.since_reset_s = s.uptime_s;
    s.workers = n;
    s.time = time_cell.load();
    s.source_error = clock_service.describe();
    for (const auto& t : trackers) {
      s.clients.records += t->table().size();
      s.clients.capacity += t->table().capacity();
      s.clients.prefixes += t->prefixes().size();
      s.clients.prefix_capacity += t->prefixes().capacity();
      s.clients.memory_bytes += t->table().memory_bytes() + t->prefixes().memory_bytes();
    }
    s.interleave.enabled = !interleave_tables.empty();
    for (const auto& t : interleave_tables) {
      s.interleave.held += t->held();
      s.interleave.capacity += t->capacity();
    }
    return s;
  };
  DaemonSources mode6_sources(snapshot, trackers, *cfg, size_t{n} * cfg->server.batch);
  mode6::ResponderOptions mode6_options;
  mode6_options.rate = cfg->mode6.rate;
  mode6_options.burst = cfg->mode6.burst;
  mode6_options.mrulist_max = cfg->mode6.mrulist_max;
  mode6_options.mrulist = cfg->mode6.mrulist_query ? mode6::MrulistAccess::kQuery : mode6::MrulistAccess::kControlKey;
  mode6_options.time_keys = cfg->mode6.time_keys;
  std::vector<io::Backend*> backend_list;
  for (auto& b : backends) backend_list.push_back(b.get());
  server::ControlService control_service(control_queue, backend_list, rules_cell, n, mode6_options,
                                         mode6_sources, stats.back()->counters);
  control_service.start();
  // From here a failure to start stops the threads already running before stratad exits.
  std::string startup_error;
  // The "top" reply of the control API and the console alike: talkers, or with "group" the
  // heaviest prefixes by network or country. Throws std::invalid_argument on bad fields.
  const auto top_reply = [&](const nlohmann::json& r) {
    if (!r.contains("group")) return control::top_json(top_talkers(trackers), r, unix_seconds());
    const auto networks = networks_cell.get();
    if (!networks) throw std::invalid_argument("no network databases ([networks] asn, country)");
    return control::top_networks_json(top_talkers(trackers), r, unix_seconds(), *networks);
  };
  // The console (GET / and /api/v1/ on the metrics listener): loopback, or with the API key.
  web::Access web_access;
  if (!cfg->metrics.api_key.empty()) web_access.key_sha256 = web::parse_key_hash(cfg->metrics.api_key);
  if (metrics_server) {
    startup_error = metrics_server->start([&] {
      control::MetricsInput in;
      in.stats = snapshot();
      const auto tops = top_talkers(trackers);
      const int64_t now_s = unix_seconds();
      for (const auto& e : control::collect_sketches(unique_counters(trackers), now_s)) {
        const int64_t len = clients::window_seconds(e.window);
        if (e.start != now_s / len * len) continue;  // current windows only
        in.unique.push_back({clients::window_name(e.window), clients::kSketchKinds[e.kind].name,
                             e.sketch->estimate()});
      }
      if (ke_tracker) {
        for (const auto& e : control::collect_sketches({&ke_tracker->unique()}, now_s)) {
          const int64_t len = clients::window_seconds(e.window);
          if (e.start != now_s / len * len) continue;
          in.ke_unique.push_back({clients::window_name(e.window), clients::kSketchKinds[e.kind].name,
                                  e.sketch->estimate()});
        }
      }
      for (const char* w : {"1m", "1h", "1d"}) {
        const auto top = control::top_json(tops, {{"window", w}, {"limit", 10}}, now_s);
        control::MetricsInput::TopShare share{w, {}};
        for (const auto& row : top["rows"]) share.shares.push_back(row["share"].get<double>());
        in.top.push_back(std::move(share));
      }
      if (const double cost = last_cost_month.load(std::memory_order_relaxed); !std::isnan(cost))
        in.cost_month_usd = cost;
      {
        const policy::BlockBook::Counts c = block_book.counts();
        in.blocks = {c.active, c.max_active, c.placed};
      }
      if (!cfg->clients.state_dir.empty())
        for (const StateSaver* saver : {&sketch_saver, &history_saver, &blocks_saver})
          in.state.push_back({saver->file, saver->saves.load(std::memory_order_relaxed),
                              saver->failures_total.load(std::memory_order_relaxed),
                              static_cast<double>(saver->last_save_unix.load(std::memory_order_relaxed))});
      if (const auto networks = networks_cell.get()) {
        const auto top = control::top_networks_json(top_talkers(trackers), {{"window", "1h"}, {"limit", 10}}, now_s,
                                                    *networks);
        for (const auto& row : top["rows"])
          in.networks.push_back({row.value("asn", uint32_t{0}), row.value("org", std::string()),
                                 row["share"].get<double>()});
      }
      return control::metrics_text(in);
    }, [&, access = web_access](const web::Request& request) {
      web::Sources sources;
      sources.stats = [&] {
        nlohmann::json doc = control::stats_json(snapshot(), base::now_real());
        doc["networks"] = networks_cell.get() != nullptr;  // the page shows top networks then
        return doc;
      };
      sources.history = [&](const nlohmann::json& r) { return control::history_json(history, r, unix_seconds()); };
      sources.top = top_reply;
      sources.blocks = [&] { return control::blocks_json(block_book.view(), unix_seconds(), block_events_lost()); };
      sources.clients = [&](const nlohmann::json& r) {
        const auto networks = networks_cell.get();
        return control::clients_page_json(client_tables(trackers), r, base::now_real(), networks.get());
      };
      return web::route(request, sources, access);
    });
  }
  if (!cfg->server.control.empty()) {
    control_server.start([&](const nlohmann::json& req, control::Responder& out) -> nlohmann::json {
      const std::string command = req.value("command", "");
      if (command == "clients") {
        const auto tables = client_tables(trackers);
        control::ClientQuery query;
        try {
          query = control::parse_client_query(req);
        } catch (const std::exception& e) {
          return {{"ok", false}, {"error", e.what()}};
        }
        const auto networks = networks_cell.get();
        return control::stream_clients(tables, query, base::now_real(), out, networks.get());
      }
      if (command == "reload") {
        std::lock_guard<std::mutex> lock(reload_mutex);
        return reload(flags, *cfg, applied, rules_cell, nts_state, networks_cell, block_book);
      }
      if (command == "kod-effect") {
        std::vector<const clients::Tracker*> all;
        for (const auto& t : trackers) all.push_back(t.get());
        return control::kod_effect_json(all, base::now_real().time_since_epoch().count(),
                                        req.value("min_age", 60.0), req.value("limit", size_t{20}));
      }
      if (command == "top") {
        try {
          if (req.value("ke", false)) {
            if (!ke_tracker) return {{"ok", false}, {"error", "NTS-KE is off ([nts] certificate)"}};
            nlohmann::json doc = control::top_json({&ke_tracker->top()}, req, unix_seconds());
            doc["ke"] = true;
            return doc;
          }
          return top_reply(req);
        } catch (const std::invalid_argument& e) {
          return {{"ok", false}, {"error", e.what()}};
        }
      }
      if (command == "unique") {
        const int64_t now_s = unix_seconds();
        nlohmann::json doc = control::sketches_json(control::collect_sketches(unique_counters(trackers), now_s),
                                                    req.value("registers", false), now_s);
        doc["ok"] = true;
        return doc;
      }
      if (command == "blocks") {
        nlohmann::json reply = control::blocks_command(block_book, req, unix_seconds(), block_events_lost());
        if (reply.value("changed", false)) {
          publish_blocks();  // in force when the command returns
          persist_blocks();
        }
        return reply;
      }
      if (command == "history") {
        try {
          return control::history_json(history, req, unix_seconds());
        } catch (const std::invalid_argument& e) {
          return {{"ok", false}, {"error", e.what()}};
        }
      }
      if (command != "stats") throw std::runtime_error("unknown command '" + command + "'");
      const control::StatsSnapshot s = snapshot();
      return control::stats_json(s, base::now_real());
    }, /*heavy_commands=*/{"clients", "top", "kod-effect", "history"});
  }

  if (ke_server && startup_error.empty()) {
    startup_error = ke_server->start();
    if (startup_error.empty()) {
      std::string where;
      for (const auto& ep : ke_server->bound()) where += (where.empty() ? "" : " ") + ep.to_string();
      base::log(LogLevel::kInfo, "nts-ke: listening on {} with {} thread{}; certificate {}: {}", where,
                cfg->nts.ke_threads, cfg->nts.ke_threads == 1 ? "" : "s", cfg->nts.certificate,
                describe_credentials(*nts_credentials));
    }
  }
  if (nts_state.secrets && startup_error.empty())
    base::log(LogLevel::kInfo, "nts: cookie keys from {}: {}; a key per {} s, {} past accepted", cfg->nts.secret,
              describe_secrets(*nts_state.secrets), cfg->nts.keys.rotate_s, cfg->nts.keys.keep);
  // Every thread runs and no privilege is left: from now on only the calls serving needs.
  if (startup_error.empty()) startup_error = daemon::install_seccomp(cfg->server.seccomp);
  if (!startup_error.empty()) base::log(LogLevel::kError, "{}", startup_error);
  std::string listen;
  for (const auto& ep : cfg->server.listen) listen += (listen.empty() ? "" : " ") + ep.to_string();
  if (startup_error.empty())
    base::log(LogLevel::kInfo, "stratad {} serving on {} with {} workers{}; time source {}; control {}; metrics {}; seccomp {}",
            STRATA_VERSION, listen, n,
            !xdp_path ? std::string(cfg->server.backend == io::BackendKind::kXdp ? " (sockets only: AF_XDP unavailable)" : "")
                      : fmt::format(" (AF_XDP: {})", fmt::join(xdp_path->served(), "; ")),
            clock::source_name(cfg->time.source),
            cfg->server.control.empty()
                ? "off"
                : fmt::format("{} ({})", cfg->server.control, control::describe_socket_file(cfg->server.control)),
            metrics_server ? fmt::format("http://{}:{}/metrics (dashboard at /)", cfg->metrics.listen->address.family ==
                                                                     base::Family::kV6
                                                                 ? "[" + cfg->metrics.listen->address.to_string() + "]"
                                                                 : cfg->metrics.listen->address.to_string(),
                                         metrics_server->port())
                           : std::string("off"),
            seccomp_text(cfg->server.seccomp));

  const std::string sketches = sketch_path(*cfg);
  // Once a minute, what went wrong in it: one line per kind at most, however large a flood.
  stats::CounterTotals last_minute = snapshot().counters;
  uint64_t last_control_refused = 0, last_metrics_cut = 0;
  auto report_minute = [&] {
    const stats::CounterTotals now = snapshot().counters;
    static constexpr std::pair<stats::Counter, const char*> kWatch[] = {
        {stats::Counter::rx_queue_drops,
         "datagrams dropped by the kernel: receive queues full (more threads or receive_buffer)"},
        {stats::Counter::send_errors, "replies the kernel refused to send"},
        {stats::Counter::clients_untracked,
         "requests not recorded: client table full of recent clients (more [clients] memory)"},
        {stats::Counter::limiter_evicted_active,
         "rate-limit prefixes evicted while active (more [clients] memory)"},
    };
    for (const auto& [counter, what] : kWatch) {
      const uint64_t delta = now[stats::index(counter)] - last_minute[stats::index(counter)];
      if (delta > 0) base::log(LogLevel::kWarning, "last minute: {} {}", delta, what);
    }
    last_minute = now;
    const auto since_last = [](uint64_t total, uint64_t& last) { return total - std::exchange(last, total); };
    if (const uint64_t d = since_last(control_server.refused(), last_control_refused); d > 0)
      base::log(LogLevel::kWarning,
                "last minute: {} control connections closed or refused: {} were open at once", d,
                control::ControlServer::kMaxConnections);
    if (const uint64_t d = since_last(metrics_server ? metrics_server->cut() : 0, last_metrics_cut); d > 0)
      base::log(LogLevel::kWarning,
                "last minute: {} metrics connections closed without a complete request "
                "(slow or stalled clients)", d);
  };
  // systemd (Type=notify): ready once every socket is bound and every worker runs. A no-op
  // without $NOTIFY_SOCKET.
  if (startup_error.empty())
    sd_notifyf(0, "READY=1\nSTATUS=serving on %s with %u workers", listen.c_str(), n);
  // Two ticks: every minute (the warnings, reclaiming rule sets) and every save_interval (the
  // sketches, when a state directory is set).
  const auto save_every = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(cfg->clients.save_interval));
  auto next_minute = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  auto next_save = std::chrono::steady_clock::now() + save_every;
  // With AF_XDP, once a second: requests the program could not hand to a socket (a map slot
  // without one) went to the sockets instead; said once.
  auto next_second = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  bool said_no_socket = false;
  // The history: a reading just after each second of CLOCK_REALTIME begins; the sample of the
  // second that ended is what changed since the last reading, over the time between them.
  // Unique addresses of the current windows, as /metrics: the workers' IPv4 and IPv6 sketches
  // merged into these, made once (16 KiB each; not 30 new ones a second).
  const auto history_sketch = std::make_unique<clients::Hll>();
  const auto history_copy = std::make_unique<clients::Hll>();
  const auto history_top = std::make_unique<clients::SpaceSaving>(512);  // as `strata top` merges
  const auto history_reading = [&](int64_t now_s) {
    control::HistoryReading r;
    const control::StatsSnapshot s = snapshot();
    r.counters = s.counters;
    r.processing_ns = s.processing_ns;
    for (const clients::Window w : clients::kWindows) {
      for (size_t kind = 0; kind < clients::kSketchKindCount; ++kind) {
        const std::string_view name = clients::kSketchKinds[kind].name;
        if (name != "v4" && name != "v6") continue;
        history_sketch->clear();
        for (const auto& t : trackers)
          t->unique().merge_into(w, kind, now_s / clients::window_seconds(w), *history_sketch, *history_copy);
        r.unique[static_cast<size_t>(w)] += history_sketch->estimate();
      }
    }
    history_top->clear();
    for (const auto& t : trackers)
      t->top().merge_into(clients::Window::kMinute, now_s / 60, clients::TopKind::kAddressRequests, *history_top);
    if (const uint64_t total = history_top->total(); total > 0) {
      const auto top = history_top->top();
      uint64_t ten = 0;
      for (size_t i = 0; i < top.size() && i < 10; ++i) ten += top[i].count;
      r.top_share = static_cast<double>(ten) / static_cast<double>(total);
    }
    return r;
  };
  const auto after_next_realtime_second = [] {
    const int64_t ns = base::now_real().time_since_epoch().count();
    const int64_t to_next = 1'000'000'000 - ((ns % 1'000'000'000) + 1'000'000'000) % 1'000'000'000;
    return std::chrono::steady_clock::now() + std::chrono::nanoseconds(to_next + 2'000'000);
  };
  control::HistoryReading last_reading = history_reading(unix_seconds());
  auto last_reading_at = std::chrono::steady_clock::now();
  auto next_history = after_next_realtime_second();
  // Dynamic blocks, four times a second: the workers' events in, expired blocks out, a new
  // set published when anything changed, the state file written (at most once a second).
  auto next_blocks = std::chrono::steady_clock::now();
  auto next_blocks_save = next_blocks;
  const auto tend_blocks = [&] {
    const int64_t now_s = unix_seconds();
    for (const auto& ring : block_events) ring->drain([&](const clients::BlockEvent& e) { block_book.event(e, now_s); });
    block_book.expire(now_s);
    publish_blocks();
    const auto now = std::chrono::steady_clock::now();
    if (block_book.dirty_state() && now >= next_blocks_save) {
      persist_blocks();
      next_blocks_save = now + std::chrono::seconds(1);
    }
  };
  while (startup_error.empty()) {
    const auto next_tick = xdp_path && !said_no_socket
                               ? std::min({next_minute, next_save, next_second, next_history, next_blocks})
                               : std::min({next_minute, next_save, next_history, next_blocks});
    const auto wait = std::max(std::chrono::steady_clock::duration::zero(),
                               next_tick - std::chrono::steady_clock::now());
    const auto wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    const timespec until_tick{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
    const int sig = sigtimedwait(&signals, nullptr, &until_tick);
    if (sig < 0) {
      if (errno != EAGAIN) continue;  // EINTR
      const auto now_tick = std::chrono::steady_clock::now();
      if (xdp_path && !said_no_socket && now_tick >= next_second) {
        stats::CounterTotals totals{};
        xdp_path->add_counters(totals);
        if (const uint64_t passed = totals[stats::index(stats::Counter::xdp_prog_pass_no_socket)]; passed > 0) {
          base::log(LogLevel::kWarning,
                    "xdp: {} NTP requests found no AF_XDP socket in the program's map: the sockets "
                    "serve them (the next step down)", passed);
          said_no_socket = true;
        }
        next_second = now_tick + std::chrono::seconds(1);
      }
      if (now_tick >= next_history) {
        const int64_t now_s = unix_seconds();
        control::HistoryReading reading = history_reading(now_s);
        const double seconds = std::chrono::duration<double>(now_tick - last_reading_at).count();
        const stats::Sample sample =
            control::history_sample(last_reading, reading, seconds, cost_provider ? &*cost_provider : nullptr);
        history.record(now_s - 1, sample);
        last_cost_month.store(sample[static_cast<size_t>(stats::Series::cost_month)], std::memory_order_relaxed);
        last_reading = std::move(reading);
        last_reading_at = now_tick;
        next_history = after_next_realtime_second();
      }
      if (now_tick >= next_blocks) {
        tend_blocks();
        next_blocks = now_tick + std::chrono::milliseconds(250);
      }
      if (now_tick >= next_save) {
        save_sketches(sketches, trackers);
        save_history(history_path(*cfg), history);
        next_save = now_tick + save_every;
      }
      if (now_tick >= next_minute) {
        report_minute();
        rules_cell.reclaim();  // rule sets a slow reader held past a reload's wait
        blocks_cell.reclaim();
        next_minute = now_tick + std::chrono::minutes(1);
      }
      continue;
    }
    if (sig == SIGHUP) {
      sd_notify(0, "RELOADING=1");
      {
        std::lock_guard<std::mutex> lock(reload_mutex);
        reload(flags, *cfg, applied, rules_cell, nts_state, networks_cell, block_book);
      }
      sd_notify(0, "READY=1");
      continue;
    }
    base::log(LogLevel::kInfo, "{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  sd_notify(0, "STOPPING=1");
  if (ke_server) ke_server->stop();
  if (metrics_server) metrics_server->stop();
  control_service.stop();
  stop.store(true);
  for (auto& b : backends) b->wake();
  for (auto& t : threads) t.join();
  save_sketches(sketches, trackers);
  save_history(history_path(*cfg), history);
  if (block_book.dirty_state()) save_blocks(blocks_path(*cfg), block_book);
  control_server.stop();
  clock_service.stop();
  uint64_t received = 0, sent = 0;
  for (const auto& ws : stats) {
    received += ws->counters.get(stats::Counter::received);
    sent += ws->counters.get(stats::Counter::responses_sent);
  }
  base::log(LogLevel::kInfo, "stopped: {} packets received, {} replies sent", received, sent);
  return startup_error.empty() ? 0 : 1;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
  strata::Flags flags;
  CLI::App app{"stratad: a multi-core NTP server with per-client state.\n"
               "Without --config it serves UDP 123 on all IPv4 and IPv6 addresses, one worker "
               "per CPU, time from the kernel clock.",
               "stratad"};
  strata::base::show_defaults(app);
  // Not CLI::ExistingFile: a missing file is a bad configuration (exit 1, named by the loader).
  app.add_option("-c,--config", flags.config_path, "TOML configuration file");
  app.add_option("-l,--listen", flags.listen,
                 "address to serve, ADDR[:PORT] or [IPv6][:PORT] (repeatable; replaces the "
                 "config's list)");
  app.add_option("-t,--threads", flags.threads, "worker threads (0: one per CPU)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--control", flags.control,
                 "control socket path (\"\" disables; default /run/stratad/control.sock)");
  app.add_option("-u,--user", flags.user, "user to run as after binding, when started as root "
                                          "(default: stratad if it exists, else nobody)");
  // `stratad --check-config FILE` is `stratad --config FILE --check-config` (as packages and
  // operators write it); with no FILE it checks --config's file (or the defaults).
  std::string check_file;
  CLI::Option* check = app.add_option("--check-config", check_file,
                                      "validate the configuration (FILE, or --config's) and exit")
                           ->expected(0, 1)
                           ->type_name("[FILE]");
  app.add_flag("-v,--verbose", flags.verbose, "log debug messages");
  app.set_version_flag("-V,--version", std::string("stratad ") + STRATA_VERSION);
  // A usage error exits 2, a bad configuration 1 (stratad(8), EXIT STATUS).
  if (const auto status = strata::base::parse_command_line(app, argc, argv, 2)) return *status;
  flags.check_config = check->count() > 0;
  if (!check_file.empty()) {
    if (!flags.config_path.empty() && flags.config_path != check_file) {
      std::fprintf(stderr, "stratad: --check-config %s and --config %s name two files: give one\n",
                   check_file.c_str(), flags.config_path.c_str());
      return 2;
    }
    flags.config_path = check_file;
  }
  try {
    return strata::run(flags);
  } catch (const std::bad_alloc&) {
    strata::base::log(strata::base::LogLevel::kError,
                      "out of memory at start: lower [clients] memory (or add memory)");
    return 1;
  }
}
