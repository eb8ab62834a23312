// Reply fields from a time state (see time_state.h).
#include "clock/time_state.h"

#include <algorithm>

namespace strata::clock {

const char* source_name(Source s) {
  switch (s) {
    case Source::kKernel: return "kernel";
    case Source::kMirror: return "mirror";
    case Source::kLocal: return "local";
  }
  return "?";
}

wire::ServerInfo server_info(const TimeState& state, base::RealTime now) {
  wire::ServerInfo info;
  const double age = std::max(0.0, std::chrono::duration<double>(now - state.as_of).count());
  info.precision = state.precision;
  info.root_delay = base::NtpShort::from_seconds(state.root_delay);
  info.root_dispersion =
      base::NtpShort::from_seconds(state.root_dispersion + state.dispersion_rate * age);
  info.reference_id = state.reference_id;
  info.reference = state.reference;
  if (state.synchronised) {
    info.leap = state.leap;
    info.stratum = state.stratum;
  } else {
    info.leap = wire::Leap::kUnsynchronised;
    info.stratum = wire::kStratumUnsynchronised;
  }
  return info;
}

}  // namespace strata::clock
