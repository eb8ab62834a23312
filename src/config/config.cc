// TOML configuration parsing and validation (see config.h).
#include "config/config.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include "base/atomic_file.h"
#include "base/text.h"
#include "stats/prices.h"
#include "web/api.h"
#include "policy/networks.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace strata::config {

namespace {

// Collects errors for one file; every check reports and carries on, so the operator sees
// all mistakes at once.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void fail(const toml::node& node, std::string reason) {
    errors_.push_back({file_, static_cast<int>(node.source().begin.line), std::move(reason)});
  }
  void fail(int line, std::string reason) { errors_.push_back({file_, line, std::move(reason)}); }

  // A path the file names, absolute: a relative one is taken from the config file's own
  // directory (not the working directory, which is / under systemd).
  std::string resolve(const std::string& path) const {
    if (path.empty() || path.front() == '/') return path;
    std::error_code ec;
    const auto dir = std::filesystem::absolute(std::filesystem::path(file_), ec).parent_path();
    return (dir / path).lexically_normal().string();
  }
  std::vector<Error>& errors() { return errors_; }

  std::optional<int64_t> integer(const toml::node& n, std::string_view key, int64_t lo,
                                 int64_t hi) {
    const auto v = n.value_exact<int64_t>();
    if (!v) {
      fail(n, fmt::format("{} must be an integer", key));
      return std::nullopt;
    }
    if (*v < lo || *v > hi) {
      fail(n, fmt::format("{} = {} is out of range {}..{}", key, *v, lo, hi));
      return std::nullopt;
    }
    return v;
  }

  std::optional<double> number(const toml::node& n, std::string_view key, double lo, double hi) {
    std::optional<double> v;
    if (n.is_floating_point()) v = n.value<double>();
    if (n.is_integer()) v = static_cast<double>(*n.value<int64_t>());
    if (!v) {
      fail(n, fmt::format("{} must be a number", key));
      return std::nullopt;
    }
    if (!(*v >= lo && *v <= hi)) {
      fail(n, fmt::format("{} = {} is out of range {}..{}", key, *v, lo, hi));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> string(const toml::node& n, std::string_view key) {
    const auto v = n.value_exact<std::string>();
    if (!v) fail(n, fmt::format("{} must be a string", key));
    return v;
  }

  std::optional<bool> boolean(const toml::node& n, std::string_view key) {
    const auto v = n.value_exact<bool>();
    if (!v) fail(n, fmt::format("{} must be true or false", key));
    return v;
  }

 private:
  std::string file_;
  std::vector<Error> errors_;
};

using Handler = std::function<void(const toml::node&)>;

// "REASON" or "REASON (HINT)" when the text is an IPv6 address that needs brackets.
std::string with_hint(std::string reason, std::string_view text) {
  const std::string hint = base::endpoint_hint(text);
  return hint.empty() ? reason : reason + ": " + hint;
}

void walk_table(Checker& check, const toml::table& table, std::string_view name,
                const std::map<std::string, Handler, std::less<>>& handlers) {
  for (auto&& [key, node] : table) {
    const auto it = handlers.find(key.str());
    if (it == handlers.end()) {
      check.fail(node, fmt::format("unknown key '{}' in [{}]", key.str(), name));
      continue;
    }
    it->second(node);
  }
}

// A listen list: "address[:port]" strings, `default_port` where none is given.
void parse_endpoints(Checker& check, const toml::node& node, std::vector<base::Endpoint>& out,
                     bool& is_default, uint16_t default_port) {
  const toml::array* list = node.as_array();
  if (list == nullptr) {
    check.fail(node, "listen must be an array of \"address:port\" strings");
    return;
  }
  out.clear();
  is_default = false;
  for (const toml::node& item : *list) {
    const auto text = check.string(item, "listen entry");
    if (!text) continue;
    const auto ep = base::Endpoint::parse(*text, default_port);
    if (!ep)
      check.fail(item, with_hint(fmt::format("listen entry '{}' is not an IPv4 or [IPv6] address "
                                             "with an optional :port",
                                             *text),
                                 *text));
    else
      out.push_back(*ep);
  }
}

void parse_listen(Checker& check, const toml::node& node, ServerConfig& server) {
  parse_endpoints(check, node, server.listen, server.listen_is_default, kNtpPort);
  const toml::array* list = node.as_array();
  if (server.listen.empty() && list != nullptr && list->empty()) check.fail(node, "listen must not be empty");
}

void parse_server(Checker& check, const toml::table& t, ServerConfig& s) {
  walk_table(
      check, t, "server",
      {
          {"listen", [&](const toml::node& n) { parse_listen(check, n, s); }},
          {"threads",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "threads", 0, 1024)) s.threads = static_cast<unsigned>(*v);
           }},
          {"control",
           [&](const toml::node& n) {
             if (auto v = check.string(n, "control")) {
               // Longer than a unix socket's path holds fails at bind: say so now.
               if (v->size() > kMaxControlPath)
                 check.fail(n, fmt::format("control = \"{}\" is {} octets: a unix socket path holds "
                                           "at most {}", *v, v->size(), kMaxControlPath));
               else
                 s.control = *v;
             }
           }},
          {"user",
           [&](const toml::node& n) {
             if (auto v = check.string(n, "user")) s.user = *v;
           }},
          {"seccomp",
           [&](const toml::node& n) {
             const auto v = check.string(n, "seccomp");
             if (!v) return;
             if (*v == "kill") s.seccomp = Seccomp::kKill;
             else if (*v == "log") s.seccomp = Seccomp::kLog;
             else if (*v == "off") s.seccomp = Seccomp::kOff;
             else check.fail(n, fmt::format("seccomp = \"{}\": expected \"kill\", \"log\" or \"off\"", *v));
           }},
          {"backend",
           [&](const toml::node& n) {
             const auto v = check.string(n, "backend");
             if (!v) return;
             if (*v == "sockets") s.backend = io::BackendKind::kSockets;
             else if (*v == "xdp") s.backend = io::BackendKind::kXdp;
             else check.fail(n, fmt::format("backend = \"{}\": expected \"sockets\" or \"xdp\"", *v));
           }},
          {"batch",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "batch", 1, 1024)) s.batch = static_cast<size_t>(*v);
           }},
          {"busy_poll_us",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "busy_poll_us", 0, 1000000))
               s.busy_poll_us = static_cast<unsigned>(*v);
           }},
          {"freebind",
           [&](const toml::node& n) {
             if (auto v = check.boolean(n, "freebind")) s.socket.freebind = *v;
           }},
          {"interleaved",
           [&](const toml::node& n) {
             if (auto v = check.boolean(n, "interleaved")) s.interleaved = *v;
           }},
          {"interleaved_entries",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "interleaved_entries", 4, 1 << 26))
               s.interleaved_entries = static_cast<uint32_t>(*v);
           }},
          {"receive_buffer",
           [&](const toml::node& n) {
             std::optional<uint64_t> bytes;
             if (n.is_integer() && *n.value<int64_t>() >= 0) bytes = *n.value<int64_t>();
             if (n.is_string()) bytes = parse_size(*n.value<std::string>());
             if (!bytes || *bytes > (1u << 30))
               check.fail(n, "receive_buffer must be a size up to 1GiB, e.g. \"4MiB\"");
             else
               s.socket.receive_buffer = static_cast<int>(*bytes);
           }},
      });
}

void parse_time(Checker& check, const toml::table& t, clock::Options& o) {
  std::optional<int64_t> stratum;
  std::optional<uint32_t> refid;
  walk_table(
      check, t, "time",
      {
          {"source",
           [&](const toml::node& n) {
             const auto v = check.string(n, "source");
             if (!v) return;
             if (*v == "kernel") o.source = clock::Source::kKernel;
             else if (*v == "mirror") o.source = clock::Source::kMirror;
             else if (*v == "local") o.source = clock::Source::kLocal;
             else check.fail(n, fmt::format("source = \"{}\": expected \"kernel\", \"mirror\" or \"local\"", *v));
           }},
          {"stratum", [&](const toml::node& n) { stratum = check.integer(n, "stratum", 1, 15); }},
          {"refid",
           [&](const toml::node& n) {
             const auto v = check.string(n, "refid");
             if (!v) return;
             refid = clock::parse_reference_id(*v);
             if (!refid)
               check.fail(n, fmt::format("refid = \"{}\": expected an IPv4 address or 1-4 "
                                         "letters/digits",
                                         *v));
           }},
          {"precision",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "precision", -30, 0)) o.precision = static_cast<int8_t>(*v);
           }},
          {"root_delay",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "root_delay", 0, 16)) o.root_delay = *v;
           }},
          {"root_dispersion",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "root_dispersion", 0, 16)) o.root_dispersion = *v;
           }},
          {"mirror",
           [&](const toml::node& n) {
             const auto v = check.string(n, "mirror");
             if (!v) return;
             const auto ep = base::Endpoint::parse(*v, kNtpPort);
             if (!ep)
               check.fail(n, with_hint(fmt::format("mirror = \"{}\": expected address[:port]", *v), *v));
             else
               o.mirror = *ep;
           }},
          {"mirror_interval",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "mirror_interval", 0.1, 60)) o.mirror_interval = *v;
           }},
          {"mirror_timeout",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "mirror_timeout", 1, 86400)) o.mirror_timeout = *v;
           }},
          {"unsynchronised",
           [&](const toml::node& n) {
             const auto v = check.string(n, "unsynchronised");
             if (!v) return;
             if (*v == "reply") o.unsynchronised = clock::UnsyncAction::kReply;
             else if (*v == "drop") o.unsynchronised = clock::UnsyncAction::kDrop;
             else check.fail(n, fmt::format("unsynchronised = \"{}\": expected \"reply\" or \"drop\"", *v));
           }},
      });
  // A local clock defaults to chrony's `local` settings: stratum 10, refid 127.127.1.1.
  if (o.source == clock::Source::kLocal) {
    o.stratum = 10;
    o.reference_id = 0x7F7F0101;
  }
  if (stratum) o.stratum = static_cast<uint8_t>(*stratum);
  if (refid) o.reference_id = *refid;
}

void parse_networks(Checker& check, const toml::table& t, NetworksConfig& c) {
  // A database file, opened here to say now (file and line) what is wrong with it, not at
  // the first lookup.
  const auto database = [&](const toml::node& n, const char* key, bool asn, std::string& into) {
    const auto v = check.string(n, key);
    if (!v || v->empty()) return;
    std::string path = check.resolve(*v), error;
    if (!policy::NetworkDb::open(asn ? path : "", asn ? "" : path, error))
      check.fail(n, fmt::format("[networks] {}: {}", key, error));
    into = path;
  };
  walk_table(check, t, "networks",
             {
                 {"asn", [&](const toml::node& n) { database(n, "asn", true, c.asn); }},
                 {"country", [&](const toml::node& n) { database(n, "country", false, c.country); }},
             });
}

void parse_cost(Checker& check, const toml::table& t, CostConfig& c) {
  const toml::node* provider_node = nullptr;
  walk_table(check, t, "cost",
             {
                 {"provider",
                  [&](const toml::node& n) {
                    provider_node = &n;
                    if (auto v = check.string(n, "provider")) c.provider = *v;
                  }},
                 {"prices",
                  [&](const toml::node& n) {
                    if (auto v = check.string(n, "prices")) c.prices = check.resolve(*v);
                  }},
                 {"price",
                  [&](const toml::node& n) {
                    if (auto v = check.number(n, "price", 0, 1000)) c.price = *v;
                  }},
             });
  if (!c.provider.empty() && c.price >= 0)
    check.fail(*provider_node, "[cost] takes provider or price (flat USD per GiB), not both");
  else if (!c.provider.empty()) {
    std::string error;
    if (!stats::choose_provider(c.provider, c.prices, -1, error)) check.fail(*provider_node, "[cost] " + error);
  } else if (!c.prices.empty() && c.price < 0) {
    check.fail(t, "[cost] prices = FILE needs provider = NAME (one of the file's providers)");
  }
}

void parse_snmp(Checker& check, const toml::table& t, SnmpConfig& c) {
  walk_table(check, t, "snmp",
             {
                 {"agentx",
                  [&](const toml::node& n) {
                    // A Unix socket path, or net-snmp's transport form (tcp:localhost:705).
                    const auto v = check.string(n, "agentx");
                    if (!v) return;
                    const bool transport = v->starts_with("tcp:") || v->starts_with("udp:") ||
                                           v->starts_with("unix:");
                    if (!v->empty() && !transport && !v->starts_with("/"))
                      check.fail(n, fmt::format("agentx = \"{}\": expected the master agent's socket, an "
                                                "absolute path (/var/agentx/master) or tcp:HOST:PORT",
                                                *v));
                    else
                      c.agentx = *v;
                  }},
                 {"refresh",
                  [&](const toml::node& n) {
                    if (auto v = check.number(n, "refresh", 0.1, 3600)) c.refresh = *v;
                  }},
                 {"ping",
                  [&](const toml::node& n) {
                    if (auto v = check.number(n, "ping", 1, 3600)) c.ping = *v;
                  }},
             });
}

void parse_metrics(Checker& check, const toml::table& t, MetricsConfig& m) {
  walk_table(check, t, "metrics",
             {
                 {"api_key",
                  [&](const toml::node& n) {
                    const auto v = check.string(n, "api_key");
                    if (!v) return;
                    if (!v->empty() && !web::parse_key_hash(*v))
                      check.fail(n, "api_key must be \"sha256:\" and the 64 hex digits of the key's SHA-256 "
                                    "(printf %s \"$KEY\" | sha256sum): the file keeps no key");
                    else m.api_key = *v;
                  }},
                 {"listen",
                  [&](const toml::node& n) {
                    const auto v = check.string(n, "listen");
                    if (!v) return;
                    if (v->empty()) {
                      m.listen.reset();
                      return;
                    }
                    const auto ep = base::Endpoint::parse(*v, std::nullopt);
                    if (!ep)
                      check.fail(n, with_hint(fmt::format("listen = \"{}\": expected address:port, "
                                                          "or \"\" to switch the endpoint off",
                                                          *v),
                                              *v));
                    else
                      m.listen = *ep;
                  }},
             });
}

void parse_xdp(Checker& check, const toml::table& t, io::XdpConfig& x) {
  walk_table(
      check, t, "xdp",
      {
          {"interfaces",
           [&](const toml::node& n) {
             const toml::array* list = n.as_array();
             if (list == nullptr) {
               check.fail(n, "interfaces must be an array of interface names, e.g. [\"eth0\"]");
               return;
             }
             x.interfaces.clear();
             for (const toml::node& item : *list) {
               const auto v = check.string(item, "interface");
               if (!v) continue;
               // IFNAMSIZ: 15 characters; no '/' (sysfs paths), no spaces.
               if (v->empty() || v->size() > 15 || v->find_first_of("/ \t:") != std::string::npos)
                 check.fail(item, fmt::format("interface \"{}\" is not an interface name (1-15 characters, "
                                              "no '/', ':' or spaces)", *v));
               else if (std::find(x.interfaces.begin(), x.interfaces.end(), *v) != x.interfaces.end())
                 check.fail(item, fmt::format("interface \"{}\" is listed twice", *v));
               else
                 x.interfaces.push_back(*v);
             }
           }},
          {"queues",
           [&](const toml::node& n) {
             const toml::array* list = n.as_array();
             if (list == nullptr) {
               check.fail(n, "queues must be an array of receive-queue numbers, e.g. [0, 1]");
               return;
             }
             x.queues.clear();
             for (const toml::node& item : *list)
               if (auto v = check.integer(item, "queue", 0, 4095)) x.queues.push_back(static_cast<uint32_t>(*v));
           }},
          {"mode",
           [&](const toml::node& n) {
             const auto v = check.string(n, "mode");
             if (!v) return;
             if (*v == "auto") x.mode = io::XdpMode::kAuto;
             else if (*v == "native") x.mode = io::XdpMode::kNative;
             else if (*v == "generic") x.mode = io::XdpMode::kGeneric;
             else check.fail(n, fmt::format("mode = \"{}\": expected \"auto\", \"native\" or \"generic\"", *v));
           }},
          {"zerocopy",
           [&](const toml::node& n) {
             const auto v = check.string(n, "zerocopy");
             if (!v) return;
             if (*v == "auto") x.zerocopy = io::XdpZeroCopy::kAuto;
             else if (*v == "on") x.zerocopy = io::XdpZeroCopy::kOn;
             else if (*v == "off") x.zerocopy = io::XdpZeroCopy::kOff;
             else check.fail(n, fmt::format("zerocopy = \"{}\": expected \"auto\", \"on\" or \"off\"", *v));
           }},
          {"busy_poll",
           [&](const toml::node& n) {
             if (auto v = check.boolean(n, "busy_poll")) x.busy_poll = *v;
           }},
      });
}

void parse_mode6(Checker& check, const toml::table& t, Mode6Config& m) {
  walk_table(check, t, "mode6",
             {
                 {"enabled",
                  [&](const toml::node& n) {
                    if (auto v = check.boolean(n, "enabled")) m.enabled = *v;
                  }},
                 {"rate",
                  [&](const toml::node& n) {
                    if (auto v = check.number(n, "rate", 0.01, 1e6)) m.rate = *v;
                  }},
                 {"burst",
                  [&](const toml::node& n) {
                    if (auto v = check.number(n, "burst", 1, 1e7)) m.burst = *v;
                  }},
                 {"mrulist_max",
                  [&](const toml::node& n) {
                    if (auto v = check.integer(n, "mrulist_max", 1, 100000000))
                      m.mrulist_max = static_cast<uint32_t>(*v);
                  }},
                 {"mrulist",
                  [&](const toml::node& n) {
                    const auto v = check.string(n, "mrulist");
                    if (!v) return;
                    if (*v == "control-key") m.mrulist_query = false;
                    else if (*v == "query") m.mrulist_query = true;
                    else check.fail(n, fmt::format("mrulist = \"{}\": expected \"control-key\" or \"query\"", *v));
                  }},
                 {"time_keys",
                  [&](const toml::node& n) {
                    if (auto v = check.boolean(n, "time_keys")) m.time_keys = *v;
                  }},
             });
}

void parse_clients(Checker& check, const toml::table& t, ClientsConfig& c) {
  walk_table(
      check, t, "clients",
      {
          {"memory",
           [&](const toml::node& n) {
             std::optional<uint64_t> bytes;
             if (n.is_integer() && *n.value<int64_t>() >= 0) bytes = *n.value<int64_t>();
             if (n.is_string()) bytes = parse_size(*n.value<std::string>());
             if (!bytes || *bytes < (1u << 20) || *bytes > (1ull << 40))
               check.fail(n, "memory must be a size from 1MiB to 1TiB, e.g. \"256MiB\"");
             else
               c.memory = *bytes;
           }},
          {"mindepth",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "mindepth", 0, 100000000)) c.mindepth = static_cast<uint32_t>(*v);
           }},
          {"maxage",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "maxage", 0, 86400 * 365)) c.maxage = *v;
           }},
          {"state_dir",
           [&](const toml::node& n) {
             if (auto v = check.string(n, "state_dir")) c.state_dir = check.resolve(*v);
           }},
          {"save_interval",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "save_interval", 1, 86400)) c.save_interval = *v;
           }},
      });
}

// A handler that stores a number in lo..hi at `out` (or fails naming `key`).
Handler set_number(Checker& check, std::string_view key, double& out, double lo, double hi) {
  return [&check, &out, key, lo, hi](const toml::node& n) {
    if (auto v = check.number(n, key, lo, hi)) out = *v;
  };
}

void parse_ratelimit(Checker& check, const toml::table& t, clients::LimitParams& p) {
  const auto flag = [&](std::string_view key, bool& out) {
    return [&, key](const toml::node& n) {
      if (auto v = check.boolean(n, key)) out = *v;
    };
  };
  walk_table(
      check, t, "ratelimit",
      {
          {"enabled", flag("enabled", p.enabled)},
          {"v4_prefix",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "v4_prefix", 8, 32)) p.v4_prefix = static_cast<int>(*v);
           }},
          {"v6_prefix",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "v6_prefix", 16, 128)) p.v6_prefix = static_cast<int>(*v);
           }},
          {"interval", set_number(check, "interval", p.interval_s, 1e-6, 86400)},
          {"burst", set_number(check, "burst", p.burst, 1, 1000000)},
          {"min_spacing", set_number(check, "min_spacing", p.min_spacing_s, 0, 3600)},
          {"leak", set_number(check, "leak", p.leak, 0, 1)},
          {"kod", flag("kod", p.kod)},
          {"kod_interval", set_number(check, "kod_interval", p.kod_interval_s, 0, 86400)},
          {"flood_rate", set_number(check, "flood_rate", p.flood_rate, 0, 1e9)},
          {"score_decay", set_number(check, "score_decay", p.score_decay_s, 0.1, 86400)},
      });
}

// A list of prefixes ("192.0.2.0/24", "2001:db8::/32", a bare address).
void parse_prefixes(Checker& check, const toml::node& n, std::string_view key, std::vector<base::Cidr>& out) {
  const toml::array* list = n.as_array();
  if (list == nullptr) {
    check.fail(n, fmt::format("{} must be an array of prefixes (\"192.0.2.0/24\", \"2001:db8::/32\")", key));
    return;
  }
  out.clear();
  for (const toml::node& item : *list) {
    const auto text = check.string(item, key);
    if (!text) continue;
    const auto c = base::Cidr::parse(*text);
    if (!c) check.fail(item, fmt::format("{} entry '{}' is not an address or prefix", key, *text));
    else out.push_back(*c);
  }
}

void parse_block_rule(Checker& check, const toml::table& t, policy::BlockRule& r) {
  const toml::node* duration_node = nullptr;
  walk_table(check, t, "[blocks.rule]",
             {
                 {"name",
                  [&](const toml::node& n) {
                    if (auto v = check.string(n, "name")) r.name = *v;
                  }},
                 {"v4_prefix",
                  [&](const toml::node& n) {
                    if (auto v = check.integer(n, "v4_prefix", 8, 32)) r.v4_prefix = static_cast<int>(*v);
                  }},
                 {"v6_prefix",
                  [&](const toml::node& n) {
                    if (auto v = check.integer(n, "v6_prefix", 32, 128)) r.v6_prefix = static_cast<int>(*v);
                  }},
                 {"rate", set_number(check, "rate", r.rate, 1e-4, 1e9)},
                 {"window", set_number(check, "window", r.window_s, 1, 3600)},
                 {"warn", set_number(check, "warn", r.warn, 0, 1e9)},
                 {"action",
                  [&](const toml::node& n) {
                    const auto v = check.string(n, "action");
                    if (!v) return;
                    if (const auto a = policy::parse_block_action(*v)) r.action = *a;
                    else check.fail(n, fmt::format("action = \"{}\": expected \"drop\", \"kod\" or \"leak\"", *v));
                  }},
                 {"duration",
                  [&](const toml::node& n) {
                    duration_node = &n;
                    if (auto v = check.number(n, "duration", 1, 400.0 * 86400)) r.duration_s = *v;
                  }},
                 {"max_duration", set_number(check, "max_duration", r.max_duration_s, 1, 400.0 * 86400)},
                 {"growth", set_number(check, "growth", r.growth, 1, 16)},
                 {"exclude", [&](const toml::node& n) { parse_prefixes(check, n, "exclude", r.exclude); }},
             });
  if (r.warn >= r.rate && r.warn > 0)
    check.fail(t, fmt::format("[[blocks.rule]] \"{}\": warn = {} must be below rate = {}", r.name, r.warn, r.rate));
  if (r.max_duration_s < r.duration_s) {
    if (duration_node != nullptr && !t.contains("max_duration")) r.max_duration_s = r.duration_s;
    else check.fail(t, fmt::format("[[blocks.rule]] \"{}\": max_duration must be at least duration", r.name));
  }
  if (r.rate * r.window_s < 2)
    check.fail(t, fmt::format("[[blocks.rule]] \"{}\": rate x window = {} requests: a single request would "
                              "block (at least 2)", r.name, r.rate * r.window_s));
}

void parse_blocks(Checker& check, const toml::table& t, policy::BlocksConfig& b) {
  walk_table(
      check, t, "blocks",
      {
          {"enabled",
           [&](const toml::node& n) {
             if (auto v = check.boolean(n, "enabled")) b.enabled = *v;
           }},
          {"exclude", [&](const toml::node& n) { parse_prefixes(check, n, "exclude", b.exclude); }},
          {"max_active",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "max_active", 1, 1000000)) b.max_active = static_cast<uint32_t>(*v);
           }},
          {"table_size",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "table_size", 16, 16777216)) b.table_size = static_cast<uint32_t>(*v);
           }},
          {"rule",
           [&](const toml::node& n) {
             const toml::array* list = n.as_array();
             if (list == nullptr || (!list->is_array_of_tables() && !list->empty())) {
               check.fail(n, "rule must be [[blocks.rule]] tables (or rule = [] for none)");
               return;
             }
             b.rules.clear();
             for (const toml::node& item : *list) {
               policy::BlockRule r;
               r.name = fmt::format("rule {}", b.rules.size() + 1);
               parse_block_rule(check, *item.as_table(), r);
               for (const auto& other : b.rules)
                 if (other.name == r.name) check.fail(item, fmt::format("[[blocks.rule]] name \"{}\" used twice", r.name));
               b.rules.push_back(std::move(r));
             }
             if (b.rules.size() > clients::kMaxBlockRules)
               check.fail(n, fmt::format("{} [[blocks.rule]] tables: at most {}", b.rules.size(), clients::kMaxBlockRules));
           }},
      });
}

// Reads a file a key names (rules, keys): nullopt, with the reason at `n`, when it cannot.
std::optional<std::string> read_named_file(Checker& check, const toml::node& n, const std::string& path,
                                           std::string_view key) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    check.fail(n, fmt::format("{} = \"{}\": not a regular file", key, path));
    return std::nullopt;
  }
  if (st.st_size > (int64_t{256} << 20)) {
    check.fail(n, fmt::format("{} = \"{}\": larger than 256 MiB", key, path));
    return std::nullopt;
  }
  // Not a half-written file: one changed a moment ago is read once it has settled.
  std::string error;
  auto text = base::read_settled_file(path, error);
  if (!text) check.fail(n, fmt::format("{} = \"{}\": cannot open it: {}", key, path, error));
  return text;
}

void parse_auth(Checker& check, const toml::table& t, AuthConfig& a, std::vector<Error>& file_errors) {
  const toml::node* trusted_node = nullptr;
  const toml::node* control_node = nullptr;
  walk_table(
      check, t, "auth",
      {
          {"keys",
           [&](const toml::node& n) {
             const auto v = check.string(n, "keys");
             if (!v || v->empty()) return;
             a.keys_file = check.resolve(*v);
             const auto text = read_named_file(check, n, a.keys_file, "keys");
             if (!text) return;
             auth::ParsedKeys parsed = auth::parse_keys_text(*text, a.keys_file);
             for (const auto& e : parsed.errors) file_errors.push_back({e.file, e.line, e.reason});
             a.keys = std::move(parsed.keys);
           }},
          {"trusted",
           [&](const toml::node& n) {
             trusted_node = &n;
             const toml::array* list = n.as_array();
             if (list == nullptr) {
               check.fail(n, "trusted must be an array of key ids, e.g. [1, 2]");
               return;
             }
             for (const toml::node& item : *list)
               if (auto v = check.integer(item, "trusted key id", 1, 0xffffffffLL))
                 a.trusted.push_back(static_cast<uint32_t>(*v));
           }},
          {"bad_mac",
           [&](const toml::node& n) {
             const auto v = check.string(n, "bad_mac");
             if (!v) return;
             if (*v == "drop") a.bad_mac = auth::BadMac::kDrop;
             else if (*v == "crypto-nak") a.bad_mac = auth::BadMac::kCryptoNak;
             else check.fail(n, fmt::format("bad_mac = \"{}\": expected \"drop\" or \"crypto-nak\"", *v));
           }},
          {"control_key",
           [&](const toml::node& n) {
             control_node = &n;
             if (auto v = check.integer(n, "control_key", 0, 0xffffffffLL)) a.control_key = static_cast<uint32_t>(*v);
           }},
      });
  const auto known = [&](uint32_t id) {
    return std::any_of(a.keys.begin(), a.keys.end(), [&](const auth::Key& k) { return k.id == id; });
  };
  if (trusted_node != nullptr && !a.keys_file.empty())
    for (uint32_t id : a.trusted)
      if (!known(id)) check.fail(*trusted_node, fmt::format("trusted key {} is not in {}", id, a.keys_file));
  if (control_node != nullptr && a.control_key != 0 && !known(a.control_key))
    check.fail(*control_node, fmt::format("control_key {} is not in the keys file", a.control_key));
  if (!a.trusted.empty())
    for (auth::Key& k : a.keys)
      k.trusted = std::find(a.trusted.begin(), a.trusted.end(), k.id) != a.trusted.end();
}

void parse_nts(Checker& check, const toml::table& t, NtsConfig& c, const toml::node*& cert_node) {
  walk_table(
      check, t, "nts",
      {
          {"certificate",
           [&](const toml::node& n) {
             cert_node = &n;
             if (auto v = check.string(n, "certificate")) c.certificate = check.resolve(*v);
           }},
          {"key",
           [&](const toml::node& n) {
             if (auto v = check.string(n, "key")) c.key = check.resolve(*v);
           }},
          {"listen",
           [&](const toml::node& n) {
             parse_endpoints(check, n, c.listen, c.listen_is_default, kNtsKePort);
             if (const toml::array* list = n.as_array(); list != nullptr && list->empty())
               check.fail(n, "listen must not be empty (leave certificate out to switch NTS-KE off)");
           }},
          {"ntp_server",
           [&](const toml::node& n) {
             const auto v = check.string(n, "ntp_server");
             if (!v) return;
             const bool printable = std::all_of(v->begin(), v->end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
             if (v->empty() || v->size() > 255 || !printable)
               check.fail(n, fmt::format("ntp_server = \"{}\": expected a host name or address of 1-255 "
                                         "printable characters", *v));
             else
               c.ntp_server = *v;
           }},
          {"ntp_port",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "ntp_port", 1, 65535)) c.ntp_port = static_cast<uint16_t>(*v);
           }},
          {"ke_threads",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "ke_threads", 1, 64)) c.ke_threads = static_cast<unsigned>(*v);
           }},
          {"max_connections",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "max_connections", 1, 100000))
               c.max_connections = static_cast<unsigned>(*v);
           }},
          {"timeout",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "timeout", 0.05, 60)) c.timeout = *v;
           }},
          {"cookies",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "cookies", 1, 8)) c.cookies = static_cast<unsigned>(*v);
           }},
          {"ke_interval",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "ke_interval", 0, 86400)) c.ke_interval = *v;
           }},
          {"ke_burst",
           [&](const toml::node& n) {
             if (auto v = check.number(n, "ke_burst", 1, 1000000)) c.ke_burst = *v;
           }},
          {"secret",
           [&](const toml::node& n) {
             const auto v = check.string(n, "secret");
             if (!v) return;
             if (v->empty()) check.fail(n, "secret must name a file");
             c.secret = check.resolve(*v);
             c.secret_is_default = false;
           }},
          {"rotate",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "rotate", 1, 30 * 86400)) c.keys.rotate_s = *v;
           }},
          {"keep",
           [&](const toml::node& n) {
             if (auto v = check.integer(n, "keep", 0, nts::kMaxKeep)) c.keys.keep = static_cast<int>(*v);
           }},
      });
}

void parse_access(Checker& check, const toml::table& t, AccessConfig& a,
                  std::vector<Error>& rule_errors, std::vector<Error>& warnings, const std::string& name) {
  std::vector<policy::Rule> file_rules;  // after the inline ones, whatever the key order
  walk_table(
      check, t, "access",
      {
          {"rules",
           [&](const toml::node& n) {
             const toml::array* list = n.as_array();
             if (list == nullptr) {
               check.fail(n, "rules must be an array of \"PREFIX ACTION...\" strings");
               return;
             }
             for (const toml::node& item : *list) {
               const auto text = check.string(item, "rules entry");
               if (!text) continue;
               const int line = static_cast<int>(item.source().begin.line);
               policy::ParsedRules parsed = policy::parse_rules_text(*text, "");
               for (const auto& e : parsed.errors) check.fail(line, e.reason);
               for (const auto& w : parsed.warnings) warnings.push_back({name, line, w.reason});
               for (auto& r : parsed.rules) {
                 r.file = item.source().path ? std::string(*item.source().path) : "";
                 r.line = line;
                 a.rules.push_back(std::move(r));
               }
             }
           }},
          {"file",
           [&](const toml::node& n) {
             const auto v = check.string(n, "file");
             if (!v) return;
             a.file = check.resolve(*v);
             const auto text = read_named_file(check, n, a.file, "file");
             if (!text) return;
             policy::ParsedRules parsed = policy::parse_rules_text(*text, a.file);
             for (const auto& e : parsed.errors) rule_errors.push_back({e.file, e.line, e.reason});
             for (const auto& w : parsed.warnings) warnings.push_back({w.file, w.line, w.reason});
             file_rules = std::move(parsed.rules);
           }},
      });
  for (auto& r : file_rules) a.rules.push_back(std::move(r));
}

}  // namespace

policy::Policy compile_access(const Config& config) {
  std::vector<policy::RuleError> errors;
  return policy::Policy::compile(config.access.rules, {config.ratelimit.enabled}, errors);
}

std::string Error::to_string() const {
  // The reason may quote a value of any length: its start and its end (the why) are kept.
  const std::string why = base::shorten(reason);
  if (line > 0) return fmt::format("{}:{}: {}", file, line, why);
  return fmt::format("{}: {}", file, why);
}

Config default_config() {
  Config c;
  c.server.socket.receive_buffer = ServerConfig::kDefaultReceiveBuffer;
  c.server.listen = {base::Endpoint{base::IpAddress{base::Family::kV4, {}}, kNtpPort},
                     base::Endpoint{base::IpAddress{base::Family::kV6, {}}, kNtpPort}};
  c.nts.listen = {base::Endpoint{base::IpAddress{base::Family::kV6, {}}, kNtsKePort},
                  base::Endpoint{base::IpAddress{base::Family::kV4, {}}, kNtsKePort}};
  return c;
}

LoadResult parse_config(std::string_view text, const std::string& name) {
  LoadResult result;
  Checker check(name);
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    result.errors.push_back(
        {name, static_cast<int>(e.source().begin.line), std::string(e.description())});
    return result;
  }
  Config config = default_config();
  std::vector<Error> rule_errors;  // from a rules file: they name that file
  const toml::node* nts_table = nullptr;
  const toml::node* xdp_table = nullptr;
  const toml::node* cert_node = nullptr;
  for (auto&& [key, node] : root) {
    const toml::table* table = node.as_table();
    if (key.str() == "server" && table) {
      parse_server(check, *table, config.server);
    } else if (key.str() == "time" && table) {
      parse_time(check, *table, config.time);
    } else if (key.str() == "clients" && table) {
      parse_clients(check, *table, config.clients);
    } else if (key.str() == "ratelimit" && table) {
      parse_ratelimit(check, *table, config.ratelimit);
    } else if (key.str() == "metrics" && table) {
      parse_metrics(check, *table, config.metrics);
    } else if (key.str() == "snmp" && table) {
      parse_snmp(check, *table, config.snmp);
    } else if (key.str() == "networks" && table) {
      parse_networks(check, *table, config.networks);
    } else if (key.str() == "cost" && table) {
      parse_cost(check, *table, config.cost);
    } else if (key.str() == "blocks" && table) {
      parse_blocks(check, *table, config.blocks);
    } else if (key.str() == "access" && table) {
      parse_access(check, *table, config.access, rule_errors, result.warnings, name);
    } else if (key.str() == "mode6" && table) {
      parse_mode6(check, *table, config.mode6);
    } else if (key.str() == "auth" && table) {
      parse_auth(check, *table, config.auth, rule_errors);
    } else if (key.str() == "xdp" && table) {
      xdp_table = &node;
      parse_xdp(check, *table, config.xdp);
    } else if (key.str() == "nts" && table) {
      nts_table = &node;
      parse_nts(check, *table, config.nts, cert_node);
    } else {
      check.fail(node, fmt::format("unknown {} '{}' (expected [server], [time], [clients], "
                                   "[ratelimit], [blocks], [access], [auth], [mode6], [metrics], [snmp], [cost], [networks], [nts] or [xdp])",
                                   table ? "table" : "key", key.str()));
    }
  }
  // [nts]: certificate and key together; a secrets file to keep cookie keys in.
  if (nts_table != nullptr) {
    NtsConfig& n = config.nts;
    if (n.certificate.empty() != n.key.empty())
      check.fail(cert_node != nullptr ? *cert_node : *nts_table,
                 "[nts] needs both certificate and key (or neither: no NTS-KE)");
    if (n.secret_is_default && !config.clients.state_dir.empty())
      n.secret = (std::filesystem::path(config.clients.state_dir) / "nts-secret").string();
    if (n.ke() && n.secret.empty())
      check.fail(*nts_table, "[nts] needs secret = FILE (or [clients] state_dir, where nts-secret is "
                             "kept): cookie keys come from it");
  }
  // The AF_XDP backend needs to know where to attach.
  if (config.server.backend == io::BackendKind::kXdp && config.xdp.interfaces.empty()) {
    if (xdp_table != nullptr) check.fail(*xdp_table, "backend = \"xdp\" needs [xdp] interfaces = [\"NAME\", ...]");
    else if (const toml::node* b = root["server"]["backend"].node())
      check.fail(*b, "backend = \"xdp\" needs an [xdp] table with interfaces = [\"NAME\", ...]");
  }
  // Rules: every inline rule gets this file's name; duplicates anywhere are errors.
  for (auto& r : config.access.rules)
    if (r.file.empty()) r.file = name;
  std::vector<policy::RuleError> compile_errors;
  policy::Policy::compile(config.access.rules, {config.ratelimit.enabled}, compile_errors);
  for (const auto& e : compile_errors) {
    if (e.file == name) check.fail(e.line, e.reason);
    else rule_errors.push_back({e.file, e.line, e.reason});
  }
  result.errors = std::move(check.errors());
  // toml++ walks keys in sorted order; report in file order.
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const Error& a, const Error& b) { return a.line < b.line; });
  // Errors in a rules file follow, in its own line order.
  std::stable_sort(rule_errors.begin(), rule_errors.end(),
                   [](const Error& a, const Error& b) { return a.line < b.line; });
  result.errors.insert(result.errors.end(), rule_errors.begin(), rule_errors.end());
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_config(const std::string& path) {
  const auto text = base::read_file(path);
  if (!text) {
    LoadResult r;
    r.errors.push_back({path, 0, fmt::format("cannot open the file: {}", std::strerror(errno))});
    return r;
  }
  return parse_config(*text, path);
}

std::optional<uint64_t> parse_size(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  static const std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},          {"B", 1},           {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
      {"GiB", 1ull << 30}, {"TiB", 1ull << 40}, {"KB", 1000},     {"kB", 1000},
      {"MB", 1000000},  {"GB", 1000000000}};
  for (const auto& [name, factor] : kUnits) {
    if (unit != name) continue;
    if (value > UINT64_MAX / factor) return std::nullopt;
    return value * factor;
  }
  return std::nullopt;
}

}  // namespace strata::config
