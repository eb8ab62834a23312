// The system variables ntpq reads with READVAR (rv, sysstats, monstats, iostats, sysinfo,
// authinfo, timerstats), each formatted as ntpd formats it (protocols.md 2.7, 2.8), from a
// snapshot of stratad's state. Every name either NTPsec's or ntp.org's ntpq asks for is here,
// so a request with a genuinely unknown name fails as a whole (CERR_UNKNOWNVAR) as in ntpd.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ntp_time.h"
#include "clock/time_state.h"
#include "stats/counters.h"

namespace strata::mode6 {

// What the variables are made from; gathered once per request by the service.
struct SystemView {
  clock::TimeState time;
  base::NtpTimestamp now;
  double uptime_s = 0;
  stats::CounterTotals counters{};
  uint64_t control_requests = 0;  // mode-6 requests received (ss_numctlreq)
  // Client tables (ntpd's MRU list), all workers together.
  uint64_t mru_depth = 0;
  uint64_t mru_capacity = 0;
  uint64_t mru_mindepth = 0;
  double mru_maxage_s = 0;
  uint64_t mru_memory_bytes = 0;
  uint64_t mru_max_memory_bytes = 0;
  // Age of the least recently seen client, s: a scan of every table, so only on request.
  std::function<double()> mru_oldest_age_s;
  // I/O
  uint64_t receive_buffers = 0;  // datagram slots of all workers' batches
  // Identity
  std::string version;    // "stratad 0.1.0"
  std::string processor;  // uname -m
  std::string system;     // uname -s/-r
  std::string peer_address = "0.0.0.0:0";  // the mirrored server, if any
  uint8_t peer_mode = 0;                   // 3 when mirroring (we are its client)
  int poll_exponent = 6;                   // tc / mintc
  int tai_offset = 0;                      // TAI - UTC, s (kernel), 0 when unknown
  uint32_t keys = 0;                       // keys loaded
};

// The value of one variable as ntpd writes it, or nullopt for an unknown name.
std::optional<std::string> variable(std::string_view name, const SystemView& view);

// The names `ntpq -c rv` gets with an empty READVAR.
const std::vector<std::string_view>& default_variables();

// Splits READVAR data ("a,b, c") into names (whitespace trimmed, empty ones skipped).
std::vector<std::string_view> split_names(std::string_view data);

}  // namespace strata::mode6
