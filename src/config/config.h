// stratad's configuration: a TOML file parsed once, at start, into plain validated structs.
// Every error names file, line and reason; unknown keys are errors (a typo must not silently
// fall back to a default). Called by the daemon's main thread only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/keys.h"
#include "base/net.h"
#include "clients/limiter.h"
#include "policy/blocks.h"
#include "policy/policy.h"
#include "clock/sources.h"
#include "io/udp_backend.h"
#include "io/xdp_options.h"
#include "nts/cookies.h"

namespace strata::config {

inline constexpr uint16_t kNtpPort = 123;
inline constexpr uint16_t kNtsKePort = 4460;  // RFC 8915 section 6
inline constexpr const char* kDefaultControlPath = "/run/stratad/control.sock";
// The longest control socket path: sockaddr_un's sun_path (108) less its terminating NUL.
inline constexpr size_t kMaxControlPath = 107;

// [server] seccomp: what the system-call filter does with a call it does not allow.
enum class Seccomp {
  kKill,  // stop the process (SIGSYS), naming the call on stderr
  kLog,   // allow it, and let the kernel log it (audit log / kernel log)
  kOff,   // no filter
};

struct ServerConfig {
  // Default: UDP 123 on every IPv4 and IPv6 address.
  std::vector<base::Endpoint> listen;
  bool listen_is_default = true;  // an unavailable family is skipped, not fatal
  unsigned threads = 0;           // 0: one per CPU this process may run on
  std::string control = kDefaultControlPath;  // "" disables the control socket
  std::string user;               // "": "stratad" if that user exists, else "nobody"
  size_t batch = 64;              // datagrams per recvmmsg/sendmmsg
  // Receive queue per socket: deep enough to ride out a burst or a short stall instead of
  // dropping. Queueing costs no accuracy: T2 is the kernel's receive timestamp.
  static constexpr int kDefaultReceiveBuffer = 4 << 20;
  unsigned busy_poll_us = 0;      // keep polling this long after a batch before sleeping
  Seccomp seccomp = Seccomp::kKill;  // the filter installed once start-up is done
  io::BackendKind backend = io::BackendKind::kSockets;  // "xdp": AF_XDP sockets beside these ([xdp])
  io::SocketOptions socket;
  // Interleaved mode (RFC 9769): kernel transmit timestamps for replies an interleaved request
  // may follow, and per worker a table of them this big (all workers together).
  bool interleaved = true;
  uint32_t interleaved_entries = 1u << 18;
  friend bool operator==(const ServerConfig&, const ServerConfig&) = default;
};

// [clients]: the client table's memory and eviction (ntpd's mru knobs, in bytes).
struct ClientsConfig {
  // All workers together: client records (64 octets each) and rate-limit prefixes (56).
  uint64_t memory = 256ull << 20;
  uint32_t mindepth = 600;  // the newest this many records are never evicted
  double maxage = 64;       // records seen within this many seconds are never evicted
  std::string state_dir;    // "": none; else unique-client sketches are kept there
  double save_interval = 60;  // seconds between saves to state_dir (and one at stop)
  friend bool operator==(const ClientsConfig&, const ClientsConfig&) = default;
};

// [access]: rules inline ("PREFIX ACTION...") and/or from a file of such lines.
struct AccessConfig {
  std::vector<policy::Rule> rules;  // inline rules, then the file's
  std::string file;
};

// [auth]: symmetric keys (ntp.keys or chrony syntax) and what they are trusted for.
struct AuthConfig {
  std::string keys_file;             // "": no keys; every MAC is dropped
  std::vector<auth::Key> keys;       // read from keys_file, trusted flags applied
  std::vector<uint32_t> trusted;     // empty: every key in the file
  auth::BadMac bad_mac = auth::BadMac::kDrop;
  uint32_t control_key = 0;          // 0: mode 6 only from rules that allow queries
};

// [mode6]: ntpq's control protocol. Who may ask is in [access] (query/noquery) and
// [auth] control_key.
struct Mode6Config {
  bool enabled = true;
  double rate = 100;             // requests per second per source
  double burst = 1000;           // requests at once per source
  uint32_t mrulist_max = 100000; // newest client records an mrulist can walk
  bool mrulist_query = false;    // mrulist for whoever may query; false: the control key only
  bool time_keys = false;        // trusted time-client keys authorise mode 6 like the control key
  friend bool operator==(const Mode6Config&, const Mode6Config&) = default;
};

// [metrics]: the Prometheus endpoint.
struct MetricsConfig {
  std::optional<base::Endpoint> listen = base::Endpoint{base::IpAddress::v4(0x7F000001), 9123};
  // The dashboard's API from outside loopback: "sha256:HEX" of the key clients send ("": the
  // API answers loopback only). Only the hash is kept.
  std::string api_key;
  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

// [nts]: Network Time Security (RFC 8915). NTS-KE (TLS 1.3 on TCP 4460) runs when a
// certificate is configured; the NTP side serves NTS requests then, or when only a `secret` is
// set (an NTP server of a fleet whose KE runs elsewhere with the same secret file).
struct NtsConfig {
  std::string certificate;  // PEM, full chain; "" with key "": no NTS-KE
  std::string key;          // PEM private key
  std::vector<base::Endpoint> listen;  // default [::]:4460 and 0.0.0.0:4460
  bool listen_is_default = true;       // an unavailable family is skipped, not fatal
  std::string ntp_server;  // Server Negotiation record ("": none, the client uses the KE host)
  uint16_t ntp_port = 0;   // Port Negotiation record (0: none, the client uses 123)
  unsigned ke_threads = 1;
  unsigned max_connections = 512;  // open KE connections, all threads; more are closed at once
  double timeout = 2;              // seconds for a whole KE exchange, handshake included
  unsigned cookies = 8;            // per KE response
  // Per source prefix ([ratelimit] v4_prefix/v6_prefix): one KE per `ke_interval` seconds on
  // average, `ke_burst` at once; more are closed before the handshake.
  double ke_interval = 1;
  double ke_burst = 32;
  std::string secret;          // the secrets file; default [clients] state_dir/nts-secret
  bool secret_is_default = true;
  nts::KeyPolicy keys;         // rotate (seconds), keep
  bool ke() const { return !certificate.empty(); }
  bool enabled() const { return ke() || !secret_is_default; }
  friend bool operator==(const NtsConfig&, const NtsConfig&) = default;
};

// [cost]: what stratad's traffic costs, for the history's cost series (the prices `strata cost`
// uses: data/prices.toml built in, or an operator's file). No provider and no price: no series.
struct CostConfig {
  std::string provider;  // a provider of the prices file ("": none)
  std::string prices;    // prices file ("": the built-in one)
  double price = -1;     // flat USD per GiB sent instead (< 0: none)
  bool enabled() const { return !provider.empty() || price >= 0; }
  friend bool operator==(const CostConfig&, const CostConfig&) = default;
};

// [networks]: MaxMind-format databases that say whose network a client is in (reloadable).
struct NetworksConfig {
  std::string asn;      // GeoLite2-ASN, DB-IP ASN Lite, IPinfo Lite ("": none)
  std::string country;  // GeoLite2-Country, DB-IP Country Lite, IPinfo Lite ("": none)
  bool enabled() const { return !asn.empty() || !country.empty(); }
  friend bool operator==(const NetworksConfig&, const NetworksConfig&) = default;
};

// [snmp]: read by strata-snmp, the AgentX subagent (stratad itself only checks it).
struct SnmpConfig {
  std::string agentx;   // the master agent's AgentX socket ("": SNMP off), e.g. /var/agentx/master
  double refresh = 1;   // seconds a reading of stratad's counters is served before the next
  double ping = 15;     // seconds between AgentX pings; a lost master is retried as often
};

struct Config {
  ServerConfig server;
  SnmpConfig snmp;
  NetworksConfig networks;
  MetricsConfig metrics;
  CostConfig cost;
  clock::Options time;
  ClientsConfig clients;
  clients::LimitParams ratelimit;
  policy::BlocksConfig blocks;  // [blocks], [[blocks.rule]]
  AccessConfig access;
  AuthConfig auth;
  Mode6Config mode6;
  NtsConfig nts;
  io::XdpConfig xdp;
};

// The reloadable part of a configuration, compiled: what SIGHUP and `strata reload` change.
policy::Policy compile_access(const Config& config);

struct Error {
  std::string file;
  int line = 0;  // 0: not tied to a line
  std::string reason;
  std::string to_string() const;
};

struct LoadResult {
  std::optional<Config> config;
  std::vector<Error> errors;
  std::vector<Error> warnings;  // accepted, but said: host bits in a prefix, ...
};

// The configuration with no file: every default.
Config default_config();

// Parses TOML text; `name` is the file name used in errors.
LoadResult parse_config(std::string_view text, const std::string& name);
// Reads and parses a file.
LoadResult load_config(const std::string& path);

// "4MiB", "256 MiB", "1GB", "65536" -> bytes. nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view text);

}  // namespace strata::config
