// strata-snmp: an AgentX subagent (net-snmp) that serves stratad's NTPv4-MIB and STRATA-MIB
// objects (snmp/mib.h) to a running snmpd, reading stratad over its control socket.
//
// A process of its own rather than a thread of stratad: net-snmp's agent library is single-
// threaded, reads config and persistent files of its own and makes many system calls that
// stratad's seccomp filter does not allow; a fault in it must not stop the time service; and
// the control socket already gives every number (the same replies `strata stats`, `strata top`
// use). The values are read at most once per [snmp] refresh seconds, when a request comes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <signal.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "base/command_line.h"
#include "config/config.h"
#include "control/control_server.h"
#include "snmp/mib.h"

// net-snmp last: its headers define macros of their own.
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>

namespace {

using namespace strata;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Agent {
  std::string control;
  double refresh = 1;
  std::vector<std::optional<snmp::Value>> values;
  std::chrono::steady_clock::time_point read_at{};
  bool have_reading = false;
  bool was_reachable = true;

  void read() {
    snmp::Reading r;
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    r.unix_now = now.tv_sec;
    r.unix_fraction = now.tv_nsec / 1e9;
    try {
      r.stats = control::request(control, {{"command", "stats"}}, 1000);
      r.unique = control::request(control, {{"command", "unique"}}, 1000);
      const char* windows[] = {"1m", "1h", "1d"};
      for (int w = 0; w < 3; ++w)
        r.top[w] = control::request(control, {{"command", "top"}, {"window", windows[w]}, {"limit", 10}}, 1000);
      r.reachable = r.stats.value("ok", false);
      if (!r.reachable) throw std::runtime_error(r.stats.value("error", "stats refused"));
      if (!was_reachable) std::fprintf(stderr, "strata-snmp: stratad answers again on %s\n", control.c_str());
      was_reachable = true;
    } catch (const std::exception& e) {
      r.reachable = false;
      if (was_reachable)
        std::fprintf(stderr, "strata-snmp: %s (serving ntpEntStatusCurrentMode notRunning)\n", e.what());
      was_reachable = false;
    }
    values = snmp::values(r);
    read_at = std::chrono::steady_clock::now();
    have_reading = true;
  }

  const std::optional<snmp::Value>& value(size_t i) {
    const auto age = std::chrono::steady_clock::now() - read_at;
    if (!have_reading || age >= std::chrono::duration<double>(refresh)) read();
    return values[i];
  }
};

Agent g_agent;

void set_value(netsnmp_variable_list* vb, const snmp::Value& v) {
  switch (v.type) {
    case snmp::Type::kInteger: {
      const long x = static_cast<long>(v.integer);
      snmp_set_var_typed_value(vb, ASN_INTEGER, &x, sizeof x);
      break;
    }
    case snmp::Type::kUnsigned:
    case snmp::Type::kGauge:
    case snmp::Type::kCounter32:
    case snmp::Type::kTimeTicks: {
      const u_long x = static_cast<u_long>(v.number);
      const u_char type = v.type == snmp::Type::kCounter32   ? ASN_COUNTER
                          : v.type == snmp::Type::kTimeTicks ? ASN_TIMETICKS
                          : v.type == snmp::Type::kGauge     ? ASN_GAUGE
                                                             : ASN_UNSIGNED;
      snmp_set_var_typed_value(vb, type, &x, sizeof x);
      break;
    }
    case snmp::Type::kCounter64: {
      struct counter64 c {};
      c.high = static_cast<u_long>(v.number >> 32);
      c.low = static_cast<u_long>(v.number & 0xffffffffu);
      snmp_set_var_typed_value(vb, ASN_COUNTER64, &c, sizeof c);
      break;
    }
    case snmp::Type::kOctets:
      snmp_set_var_typed_value(vb, ASN_OCTET_STR, v.octets.data(), v.octets.size());
      break;
  }
}

int handle(netsnmp_mib_handler*, netsnmp_handler_registration* reg, netsnmp_agent_request_info* info,
           netsnmp_request_info* requests) {
  const size_t index = reinterpret_cast<uintptr_t>(reg->my_reg_void);
  for (netsnmp_request_info* r = requests; r != nullptr; r = r->next) {
    if (info->mode != MODE_GET) continue;  // read-only: the instance helper refuses sets
    const auto& v = g_agent.value(index);
    if (v) set_value(r->requestvb, *v);
    else netsnmp_set_request_error(info, r, SNMP_NOSUCHINSTANCE);
  }
  return SNMP_ERR_NOERROR;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, agentx, control_path;
  std::optional<double> refresh, ping;
  bool dump = false;
  CLI::App app{"strata-snmp: serves stratad's NTPv4-MIB (RFC 5907) and STRATA-MIB objects to snmpd as an "
               "AgentX subagent, reading stratad over its control socket.",
               "strata-snmp"};
  strata::base::show_defaults(app);
  app.add_option("-c,--config", config_path, "stratad's TOML configuration ([snmp], [server] control)");
  app.add_option("--agentx", agentx, "the master agent's AgentX socket (replaces [snmp] agentx)");
  app.add_option("--control", control_path, "stratad's control socket (replaces [server] control)");
  app.add_option("--refresh", refresh, "seconds a reading of stratad is served (replaces [snmp] refresh)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--ping", ping, "seconds between AgentX pings and reconnection tries (replaces [snmp] ping)")
      ->check(CLI::Range(1.0, 3600.0));
  app.add_flag("--dump", dump, "print every object's OID, name and current value once, then exit (no AgentX)");
  app.set_version_flag("-V,--version", std::string("strata-snmp ") + STRATA_VERSION);
  if (const auto status = strata::base::parse_command_line(app, argc, argv, 2)) return *status;

  config::Config cfg = config::default_config();
  if (!config_path.empty()) {
    const config::LoadResult loaded = config::load_config(config_path);
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    if (!loaded.config) return 1;
    cfg = *loaded.config;
  }
  if (agentx.empty()) agentx = cfg.snmp.agentx;
  g_agent.control = control_path.empty() ? cfg.server.control : control_path;
  g_agent.refresh = refresh.value_or(cfg.snmp.refresh);
  const double ping_s = ping.value_or(cfg.snmp.ping);
  if (g_agent.control.empty()) {
    std::fprintf(stderr, "strata-snmp: stratad has no control socket ([server] control = \"\"): nothing to read\n");
    return 1;
  }

  if (dump) {
    const auto& objects = snmp::objects();
    for (size_t i = 0; i < objects.size(); ++i) {
      std::string dotted;
      for (const uint32_t arc : objects[i].oid) dotted += "." + std::to_string(arc);
      const auto& v = g_agent.value(i);
      std::string text = "(none)";
      if (v) text = v->type == snmp::Type::kOctets    ? "\"" + v->octets + "\""
                    : v->type == snmp::Type::kInteger ? std::to_string(v->integer)
                                                      : std::to_string(v->number);
      std::printf("%s %s %s\n", dotted.c_str(), objects[i].name.c_str(), text.c_str());
    }
    return 0;
  }
  if (agentx.empty()) {
    std::fprintf(stderr, "strata-snmp: SNMP is off: set [snmp] agentx (the master agent's AgentX socket, e.g. "
                         "/var/agentx/master) in stratad's configuration, or give --agentx\n");
    return 1;
  }

  // No MIB files, no configuration or persistent files of net-snmp's own: everything comes
  // from the command line and stratad's configuration.
  ::setenv("MIBS", "", 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
  // Alarms (AgentX pings, reconnection) run from the loop below, not from SIGALRM.
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
  snmp_disable_log();
  snmp_enable_stderrlog();
  netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 1);
  netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET, agentx.c_str());
  netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL,
                     static_cast<int>(ping_s + 0.5));
  if (init_agent("strata-snmp") != 0) {
    std::fprintf(stderr, "strata-snmp: net-snmp's agent library did not start\n");
    return 1;
  }
  const auto& objects = snmp::objects();
  for (size_t i = 0; i < objects.size(); ++i) {
    std::vector<oid> name(objects[i].oid.begin(), objects[i].oid.end());
    netsnmp_handler_registration* reg = netsnmp_create_handler_registration(
        objects[i].name.c_str(), handle, name.data(), name.size(), HANDLER_CAN_RONLY);
    reg->my_reg_void = reinterpret_cast<void*>(static_cast<uintptr_t>(i));
    if (netsnmp_register_instance(reg) != MIB_REGISTERED_OK) {
      std::fprintf(stderr, "strata-snmp: cannot register %s\n", objects[i].name.c_str());
      return 1;
    }
  }
  init_snmp("strata-snmp");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  std::fprintf(stderr, "strata-snmp: %zu objects for AgentX master %s, reading stratad on %s every %g s at most\n",
               objects.size(), agentx.c_str(), g_agent.control.c_str(), g_agent.refresh);
  while (g_stop == 0) agent_check_and_process(1);
  snmp_shutdown("strata-snmp");
  std::fprintf(stderr, "strata-snmp: stopped\n");
  return 0;
}
