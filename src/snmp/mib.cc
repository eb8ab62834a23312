// The objects strata-snmp serves and their values (see mib.h).
#include "snmp/mib.h"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "stats/counters.h"

namespace strata::snmp {
namespace {

constexpr int64_t kNtpUnixOffset = 2208988800;  // seconds from 1900 to 1970

using Getter = std::function<std::optional<Value>(const Reading&)>;

struct Def {
  Object object;
  Getter get;
  std::string units;        // STRATA-MIB only: UNITS clause ("" none)
  std::string description;  // STRATA-MIB only
  std::string syntax;       // STRATA-MIB only: SYNTAX clause
};

Oid join(const Oid& root, std::initializer_list<uint32_t> tail) {
  Oid o = root;
  o.insert(o.end(), tail);
  return o;
}

// A double from another process as an unsigned integer: rounded, NaN and negatives 0, the
// rest capped (a cast of an out-of-range double is undefined).
uint64_t whole(double v) {
  if (!(v > 0)) return 0;
  if (v >= 9.2e18) return UINT64_MAX;  // past llround's range
  return static_cast<uint64_t>(std::llround(v));
}

Value octets(std::string s) { return {Type::kOctets, 0, 0, std::move(s)}; }
Value integer(int64_t v) { return {Type::kInteger, v, 0, {}}; }
Value unsigned32(uint64_t v) { return {Type::kUnsigned, 0, std::min<uint64_t>(v, 0xffffffffu), {}}; }
Value gauge(uint64_t v) { return {Type::kGauge, 0, std::min<uint64_t>(v, 0xffffffffu), {}}; }
Value counter32(uint64_t v) { return {Type::kCounter32, 0, v & 0xffffffffu, {}}; }
Value counter64(uint64_t v) { return {Type::kCounter64, 0, v, {}}; }

// j[key], or null when j is not an object or lacks the key (a const operator[] would be
// undefined behaviour there: the replies come from another process).
const nlohmann::json& field(const nlohmann::json& j, const char* key) {
  static const nlohmann::json null;
  if (!j.is_object()) return null;
  const auto it = j.find(key);
  return it == j.end() ? null : *it;
}

// A number field as a double (an integer or a float of any size), or `otherwise`.
double number(const nlohmann::json& j, const char* key, double otherwise) {
  const auto& v = field(j, key);
  return v.is_number() ? v.get<double>() : otherwise;
}

// A small integer field, clamped to [lo, hi].
int64_t small(const nlohmann::json& j, const char* key, int64_t otherwise, int64_t lo, int64_t hi) {
  const double v = number(j, key, static_cast<double>(otherwise));
  if (std::isnan(v)) return otherwise;
  return static_cast<int64_t>(std::clamp(v, static_cast<double>(lo), static_cast<double>(hi)));
}

uint64_t counter(const Reading& r, const char* name) {
  const auto& c = field(r.stats, "counters");
  if (!c.is_object()) return 0;
  const auto it = c.find(name);
  if (it == c.end() || !it->is_number_integer()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
}

const nlohmann::json& time_of(const Reading& r) { return field(r.stats, "time"); }

bool synchronised(const Reading& r) {
  const auto& s = field(time_of(r), "synchronised");
  return s.is_boolean() && s.get<bool>();
}

std::string milliseconds(double seconds) { return fmt::format("{:.3f} ms", seconds * 1e3); }

// Distinct IPv4 + IPv6 addresses in the current window of `len` seconds.
std::optional<Value> unique_clients(const Reading& r, int64_t len) {
  const auto& sketches = field(r.unique, "sketches");
  if (!sketches.is_array()) return std::nullopt;
  const int64_t now = small(r.unique, "now", r.unix_now, 0, int64_t{1} << 40);
  double total = 0;
  for (const auto& s : sketches) {
    const std::string kind = s.value("kind", "");
    const int64_t start = small(s, "start", -1, -1, int64_t{1} << 40);
    if (start != now / len * len || (kind != "v4" && kind != "v6")) continue;
    if (small(s, "end", 0, -1, int64_t{1} << 41) - start != len) continue;
    total += std::max(0.0, number(s, "estimate", 0));
  }
  return gauge(whole(total));
}

// The share of requests of the ten busiest sources, in parts per million.
std::optional<Value> top_share(const Reading& r, int window) {
  const auto& rows = field(r.top[window], "rows");
  if (!rows.is_array()) return std::nullopt;
  double share = 0;
  for (const auto& row : rows) share += number(row, "share", 0);
  if (!std::isfinite(share)) return std::nullopt;
  return unsigned32(whole(std::clamp(share, 0.0, 1.0) * 1e6));
}

std::string system_type() {
  struct utsname u {};
  if (::uname(&u) != 0) return "unknown";
  return fmt::format("{} {}", u.sysname, u.machine);
}

uint64_t time_resolution() {
  struct timespec res {};
  if (::clock_getres(CLOCK_REALTIME, &res) != 0 || res.tv_sec != 0 || res.tv_nsec <= 0) return 0;
  return 1000000000u / static_cast<uint64_t>(res.tv_nsec);
}

std::string camel(std::string_view snake) {
  std::string out;
  bool upper = true;
  for (const char c : snake) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out;
}

std::vector<Def> build() {
  std::vector<Def> d;
  const auto ntp = [&](std::initializer_list<uint32_t> tail, const char* name, Type type, Getter get) {
    d.push_back({{join(kNtpMib, tail), name, type}, std::move(get), "", "", ""});
  };
  const auto reachable = [](Getter g) -> Getter {
    return [g = std::move(g)](const Reading& r) -> std::optional<Value> {
      if (!r.reachable) return std::nullopt;
      return g(r);
    };
  };
  const auto c32 = [&](std::initializer_list<uint32_t> tail, const char* name,
                       std::function<uint64_t(const Reading&)> f) {
    ntp(tail, name, Type::kCounter32, reachable([f = std::move(f)](const Reading& r) { return counter32(f(r)); }));
  };

  // ntpEntInfo (.1.1): the software and the clock.
  ntp({1, 1, 1, 0}, "ntpEntSoftwareName", Type::kOctets, [](const Reading&) { return octets("strata"); });
  ntp({1, 1, 2, 0}, "ntpEntSoftwareVersion", Type::kOctets,
      [](const Reading&) { return octets(STRATA_VERSION); });
  ntp({1, 1, 3, 0}, "ntpEntSoftwareVendor", Type::kOctets,
      [](const Reading&) { return octets("strata developers"); });
  // Fixed for the process's life: asked of the kernel once, not at every reading.
  ntp({1, 1, 4, 0}, "ntpEntSystemType", Type::kOctets,
      [type = system_type()](const Reading&) { return octets(type); });
  ntp({1, 1, 5, 0}, "ntpEntTimeResolution", Type::kUnsigned,
      [resolution = time_resolution()](const Reading&) { return unsigned32(resolution); });
  ntp({1, 1, 6, 0}, "ntpEntTimePrecision", Type::kInteger,
      reachable([](const Reading& r) { return integer(small(time_of(r), "precision", 0, -128, 127)); }));
  ntp({1, 1, 7, 0}, "ntpEntTimeDistance", Type::kOctets, reachable([](const Reading& r) {
        return octets(milliseconds(number(time_of(r), "root_delay", 0) / 2 + number(time_of(r), "root_dispersion", 0)));
      }));

  // ntpEntStatus (.1.2). stratad has no associations (it serves the time a local daemon or
  // the kernel keeps; ntpq -p shows none), so the association table is empty and
  // ActiveRefSourceId is 0, as that table says; the source is named in ActiveRefSourceName.
  ntp({1, 2, 1, 0}, "ntpEntStatusCurrentMode", Type::kInteger,
      [](const Reading& r) { return integer(current_mode(r)); });
  ntp({1, 2, 2, 0}, "ntpEntStatusStratum", Type::kUnsigned,
      reachable([](const Reading& r) { return unsigned32(small(time_of(r), "stratum", 16, 0, 16)); }));
  ntp({1, 2, 3, 0}, "ntpEntStatusActiveRefSourceId", Type::kUnsigned,
      reachable([](const Reading&) { return unsigned32(0); }));
  ntp({1, 2, 4, 0}, "ntpEntStatusActiveRefSourceName", Type::kOctets, reachable([](const Reading& r) {
        return octets(fmt::format("{} (refid {})", time_of(r).value("source", ""), time_of(r).value("refid", "")));
      }));
  ntp({1, 2, 6, 0}, "ntpEntStatusNumberOfRefSources", Type::kUnsigned,
      reachable([](const Reading&) { return unsigned32(0); }));
  ntp({1, 2, 7, 0}, "ntpEntStatusDispersion", Type::kOctets, reachable([](const Reading& r) {
        return octets(milliseconds(number(time_of(r), "root_dispersion", 0)));
      }));
  ntp({1, 2, 8, 0}, "ntpEntStatusEntityUptime", Type::kTimeTicks, reachable([](const Reading& r) {
        return Value{Type::kTimeTicks, 0, whole(number(r.stats, "uptime", 0) * 100) & 0xffffffffu, {}};
      }));
  ntp({1, 2, 9, 0}, "ntpEntStatusDateTime", Type::kOctets, reachable([](const Reading& r) {
        return octets(synchronised(r) ? ntp_date_time(r.unix_now, r.unix_fraction) : "");
      }));
  ntp({1, 2, 11, 0}, "ntpEntStatusLeapSecDirection", Type::kInteger, reachable([](const Reading& r) {
        const int64_t leap = small(time_of(r), "leap", 0, 0, 3);
        return integer(leap == 1 ? 1 : leap == 2 ? -1 : 0);
      }));
  c32({1, 2, 12, 0}, "ntpEntStatusInPkts", [](const Reading& r) { return counter(r, "received"); });
  c32({1, 2, 13, 0}, "ntpEntStatusOutPkts",
      [](const Reading& r) { return counter(r, "responses_sent") + counter(r, "control_responses"); });
  c32({1, 2, 14, 0}, "ntpEntStatusBadVersion", [](const Reading& r) { return counter(r, "drop_bad_version"); });
  c32({1, 2, 15, 0}, "ntpEntStatusProtocolError",
      [](const Reading& r) { return counter(r, "bad_format") + counter(r, "auth_failed"); });
  c32({1, 2, 16, 0}, "ntpEntStatusNotifications", [](const Reading&) { return uint64_t{0}; });  // none sent
  // ntpEntStatPktModeTable: requests arrive in mode client(3), replies leave in mode server(4).
  c32({1, 2, 17, 1, 2, 3}, "ntpEntStatPktSent.client", [](const Reading&) { return uint64_t{0}; });
  c32({1, 2, 17, 1, 2, 4}, "ntpEntStatPktSent.server", [](const Reading& r) { return counter(r, "responses_sent"); });
  c32({1, 2, 17, 1, 3, 3}, "ntpEntStatPktReceived.client",
      [](const Reading& r) { return counter(r, "current_version") + counter(r, "older_version"); });
  c32({1, 2, 17, 1, 3, 4}, "ntpEntStatPktReceived.server",
      [](const Reading& r) { return counter(r, "drop_mode_server"); });

  // STRATA-MIB: strataCounters (.1.1.N), every counter of the one list, in its order (new
  // counters are appended to the list, so a number never changes meaning).
  uint32_t n = 0;
  for (const auto& info : stats::kCounterInfo) {
    const std::string name(info.name);
    std::string help(info.help);
    if (!info.ntpq_label.empty()) help += fmt::format(" ntpq sysstats: '{}'.", info.ntpq_label);
    d.push_back({{join(kStrataMib, {1, 1, ++n, 0}), "strata" + camel(name), Type::kCounter64},
                 reachable([name](const Reading& r) { return counter64(counter(r, name.c_str())); }),
                 std::string(info.unit), help, "Counter64"});
  }
  const auto strata = [&](std::initializer_list<uint32_t> tail, std::string name, Type type, std::string syntax,
                          std::string units, std::string description, Getter get) {
    d.push_back({{join(kStrataMib, tail), std::move(name), type}, reachable(std::move(get)), std::move(units),
                 std::move(description), std::move(syntax)});
  };
  // strataClients (.1.2).
  const char* windows[] = {"Minute", "Hour", "Day"};
  const char* periods[] = {"minute", "hour", "day"};
  const int64_t lengths[] = {60, 3600, 86400};
  for (uint32_t w = 0; w < 3; ++w)
    strata({1, 2, 1 + w, 0}, fmt::format("strataUniqueClients{}", windows[w]), Type::kGauge, "Gauge32", "clients",
           fmt::format("Distinct client addresses (IPv4 and IPv6, HyperLogLog estimates within about 1%) "
                       "seen in the current UTC {}.",
                       periods[w]),
           [len = lengths[w]](const Reading& r) { return unique_clients(r, len); });
  strata({1, 2, 4, 0}, "strataClientRecords", Type::kGauge, "Gauge32", "clients",
         "Client records held in the client tables (each worker's, summed).", [](const Reading& r) {
           return gauge(whole(number(field(r.stats, "clients"), "records", 0)));
         });
  for (uint32_t w = 0; w < 3; ++w)
    strata({1, 2, 5 + w, 0}, fmt::format("strataTopTalkerShare{}", windows[w]), Type::kUnsigned, "Unsigned32",
           "parts per million",
           fmt::format("The share of this {}'s requests sent by its ten busiest source addresses (Space-Saving "
                       "upper bounds), in parts per million.",
                       periods[w]),
           [w](const Reading& r) { return top_share(r, static_cast<int>(w)); });
  // strataTime (.1.3).
  strata({1, 3, 1, 0}, "strataTimeSynchronised", Type::kInteger, "TruthValue", "",
         "true while the time source is synchronised; false while stratad answers with LI 3 and stratum 16.",
         [](const Reading& r) { return integer(synchronised(r) ? 1 : 2); });
  strata({1, 3, 2, 0}, "strataTimeRootDelay", Type::kUnsigned, "Unsigned32", "microseconds",
         "The root delay stratad serves.", [](const Reading& r) {
           return unsigned32(whole(number(time_of(r), "root_delay", 0) * 1e6));
         });
  strata({1, 3, 3, 0}, "strataTimeRootDispersion", Type::kUnsigned, "Unsigned32", "microseconds",
         "The root dispersion stratad serves.", [](const Reading& r) {
           return unsigned32(whole(number(time_of(r), "root_dispersion", 0) * 1e6));
         });
  std::sort(d.begin(), d.end(), [](const Def& a, const Def& b) { return a.object.oid < b.object.oid; });
  return d;
}

const std::vector<Def>& defs() {
  static const std::vector<Def> d = build();
  return d;
}

// Wraps text at 70 columns, each line indented by `indent`.
std::string wrap(const std::string& text, const std::string& indent) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > 70) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) out += indent + line;
  return out;
}

// A DESCRIPTION string: no double quotes inside (SMIv2).
std::string quoted(std::string text, const std::string& indent) {
  std::replace(text.begin(), text.end(), '"', '\'');
  return wrap("\"" + text + "\"", indent);
}

}  // namespace

const std::vector<Object>& objects() {
  static const std::vector<Object> o = [] {
    std::vector<Object> v;
    for (const auto& d : defs()) v.push_back(d.object);
    return v;
  }();
  return o;
}

std::vector<std::optional<Value>> values(const Reading& reading) {
  std::vector<std::optional<Value>> out;
  out.reserve(defs().size());
  for (const auto& d : defs()) {
    try {
      out.push_back(d.get(reading));
    } catch (const nlohmann::json::exception&) {
      out.push_back(std::nullopt);  // a reply without the field (an older stratad)
    }
  }
  return out;
}

int current_mode(const Reading& r) {
  if (!r.reachable) return 1;      // notRunning
  if (!synchronised(r)) return 2;  // notSynchronized
  const auto& source = field(time_of(r), "source");
  if (source.is_string() && source.get<std::string>() == "local") return 4;  // syncToLocal
  return 6;  // syncToRemoteServer: the local daemon's (or the kernel's) source
}

std::string ntp_date_time(int64_t unix_seconds, double fraction) {
  const int64_t ntp = unix_seconds + kNtpUnixOffset;
  const int64_t era = ntp >= 0 ? ntp >> 32 : -((-ntp + 0xffffffffLL) >> 32);
  const uint64_t offset = static_cast<uint64_t>(ntp - (era << 32));
  const uint64_t frac = static_cast<uint64_t>(std::clamp(fraction, 0.0, 0.999999999999) * 18446744073709551616.0);
  std::string out(16, '\0');
  const auto put = [&](size_t at, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
  };
  put(0, static_cast<uint32_t>(static_cast<int32_t>(era)), 4);
  put(4, offset, 4);
  put(8, frac, 8);
  return out;
}

std::string mib_text() {
  std::string m;
  m += "-- Generated by build/snmp_mib_doc from src/stats/counters.h and src/snmp/mib.cc: do not edit.\n";
  m += "-- The enterprise number 32473 is RFC 5612's number for documentation, a PLACEHOLDER until\n";
  m += "-- strata registers its own: OIDs under it will move then.\n";
  m += "STRATA-MIB DEFINITIONS ::= BEGIN\n\n";
  m += "IMPORTS\n";
  m += "    MODULE-IDENTITY, OBJECT-TYPE, Counter64, Gauge32, Unsigned32, enterprises\n";
  m += "        FROM SNMPv2-SMI\n";
  m += "    TruthValue\n        FROM SNMPv2-TC\n";
  m += "    MODULE-COMPLIANCE, OBJECT-GROUP\n        FROM SNMPv2-CONF;\n\n";
  m += "strataMIB MODULE-IDENTITY\n";
  m += "    LAST-UPDATED \"202612070000Z\"\n";
  m += "    ORGANIZATION \"strata\"\n";
  m += "    CONTACT-INFO\n        \"strata developers, https://github.com/strata-ntp/strata\"\n";
  m += "    DESCRIPTION\n";
  m += quoted("stratad's own objects, served by strata-snmp beside the NTPv4-MIB (RFC 5907): every "
              "counter as a Counter64 (RFC 5907's Counter32 packet counters wrap in about 70 minutes at "
              "a million packets a second), unique clients, the top talkers' share and the time state.",
              "        ") + "\n";
  m += "    REVISION \"202612070000Z\"\n";
  m += "    DESCRIPTION\n        \"The first version.\"\n";
  m += fmt::format("    ::= {{ enterprises {} }}\n\n", kEnterprise);
  m += "strataObjects     OBJECT IDENTIFIER ::= { strataMIB 1 }\n";
  m += "strataCounters    OBJECT IDENTIFIER ::= { strataObjects 1 }\n";
  m += "strataClients     OBJECT IDENTIFIER ::= { strataObjects 2 }\n";
  m += "strataTime        OBJECT IDENTIFIER ::= { strataObjects 3 }\n";
  m += "strataConformance OBJECT IDENTIFIER ::= { strataMIB 2 }\n";
  m += "strataGroups      OBJECT IDENTIFIER ::= { strataConformance 1 }\n";
  m += "strataCompliances OBJECT IDENTIFIER ::= { strataConformance 2 }\n";
  const char* parents[] = {"", "strataCounters", "strataClients", "strataTime"};
  std::vector<std::string> groups[4];
  for (const auto& d : defs()) {
    const Oid& o = d.object.oid;
    if (o.size() < kStrataMib.size() + 4 || !std::equal(kStrataMib.begin(), kStrataMib.end(), o.begin())) continue;
    const uint32_t branch = o[kStrataMib.size() + 1], leaf = o[kStrataMib.size() + 2];
    groups[branch].push_back(d.object.name);
    m += fmt::format("\n{} OBJECT-TYPE\n    SYNTAX      {}\n", d.object.name, d.syntax);
    if (!d.units.empty()) m += fmt::format("    UNITS       \"{}\"\n", d.units);
    m += "    MAX-ACCESS  read-only\n    STATUS      current\n    DESCRIPTION\n";
    m += quoted(d.description, "        ") + "\n";
    m += fmt::format("    ::= {{ {} {} }}\n", parents[branch], leaf);
  }
  const char* group_names[] = {"", "strataCounterGroup", "strataClientGroup", "strataTimeGroup"};
  const char* group_text[] = {"", "Every counter of stratad, 64 bits wide.", "Unique clients and top talkers.",
                              "The time state stratad serves."};
  for (int g = 1; g <= 3; ++g) {
    m += fmt::format("\n{} OBJECT-GROUP\n    OBJECTS {{\n", group_names[g]);
    for (size_t i = 0; i < groups[g].size(); ++i)
      m += fmt::format("        {}{}\n", groups[g][i], i + 1 < groups[g].size() ? "," : "");
    m += fmt::format("    }}\n    STATUS      current\n    DESCRIPTION\n        \"{}\"\n", group_text[g]);
    m += fmt::format("    ::= {{ strataGroups {} }}\n", g);
  }
  m += "\nstrataCompliance MODULE-COMPLIANCE\n    STATUS      current\n    DESCRIPTION\n";
  m += "        \"What strata-snmp serves.\"\n";
  m += "    MODULE -- this module\n";
  m += "        MANDATORY-GROUPS { strataCounterGroup, strataClientGroup, strataTimeGroup }\n";
  m += "    ::= { strataCompliances 1 }\n\nEND\n";
  return m;
}

}  // namespace strata::snmp
