// What strata-snmp serves: the NTPv4-MIB objects (RFC 5907, 1.3.6.1.2.1.197) that make sense
// for a server, and the STRATA-MIB subtree (every counter of stats/counters.h as a Counter64,
// unique clients, top-talker share, time state), computed from stratad's control replies.
// No net-snmp types here: the values are plain data, so the mapping is unit-tested on its own
// (src/snmp/mib_test.cc) and the MIB file is generated from the same list (snmp_mib_doc).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace strata::snmp {

using Oid = std::vector<uint32_t>;

// mib-2.197: ntpSnmpMIB.
inline const Oid kNtpMib = {1, 3, 6, 1, 2, 1, 197};
// The STRATA-MIB's root: enterprises.32473, the private enterprise number RFC 5612 sets aside
// for documentation. A PLACEHOLDER until strata registers a number of its own (docs/operating.md).
inline constexpr uint32_t kEnterprise = 32473;
inline const Oid kStrataMib = {1, 3, 6, 1, 4, 1, kEnterprise};

enum class Type { kInteger, kUnsigned, kGauge, kCounter32, kCounter64, kTimeTicks, kOctets };

struct Value {
  Type type = Type::kInteger;
  int64_t integer = 0;    // kInteger
  uint64_t number = 0;    // kUnsigned, kGauge, kCounter32 (already mod 2^32), kCounter64, kTimeTicks
  std::string octets;     // kOctets
};

// One object instance: its full OID (scalars end in .0), its name in its MIB.
struct Object {
  Oid oid;
  std::string name;
  Type type;
};

// Every instance served, in OID order (the NTPv4-MIB's, then the STRATA-MIB's).
const std::vector<Object>& objects();

// What one reading of stratad gives: the replies of the control commands "stats", "unique"
// and "top" for the windows 1m, 1h and 1d (limit 10). `reachable` false: stratad did not answer
// (then only the entity information and ntpEntStatusCurrentMode notRunning are served).
struct Reading {
  bool reachable = false;
  nlohmann::json stats;
  nlohmann::json unique;
  nlohmann::json top[3];
  int64_t unix_now = 0;     // the reading's time (unique-client windows, ntpEntStatusDateTime)
  double unix_fraction = 0;
};

// The value of each of objects() (same index); nullopt: not available in this reading (the
// agent answers noSuchInstance).
std::vector<std::optional<Value>> values(const Reading& reading);

// ntpEntStatusCurrentMode for a reading (RFC 5907: notRunning 1, notSynchronized 2,
// syncToLocal 4, syncToRemoteServer 6).
int current_mode(const Reading& reading);

// NtpDateTime (RFC 5907, RFC 5905's 128-bit date: era, era offset, fraction) of a Unix time.
std::string ntp_date_time(int64_t unix_seconds, double fraction);

// The STRATA-MIB module, generated from the counter list (mibs/STRATA-MIB.txt must equal it).
std::string mib_text();

}  // namespace strata::snmp
