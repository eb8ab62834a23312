// The whole per-packet logic of stratad: request bytes in, a reply or a counted drop reason
// out. Pure: the time state, receive timestamp and policy come in as parameters, so it is
// unit-tested and fuzzed without sockets or clocks. Called by each worker for each datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "clock/time_state.h"
#include "stats/counters.h"
#include "wire/packet.h"

namespace strata::server {

enum class DropReason : uint8_t {
  kNone,
  kTooShort,
  kBadVersion,
  kBadMode0,
  kBadTrailer,
  kTruncated,
  kSourcePort0,
  kModeSymmetricPassive,
  kModeServer,
  kModeBroadcast,
  kModeControl,
  kModePrivate,
  kMac,
  kCryptoNak,
  kNts,
  kMsSntp,
  kUnsynchronised,
};

// The detailed counter for a drop reason and the ntpd sysstats bucket it belongs to.
stats::Counter drop_counter(DropReason reason);
stats::Counter ntpd_bucket(DropReason reason);

enum class VersionClass : uint8_t { kNotCounted, kCurrent, kOlder };

struct Decision {
  bool reply = false;
  DropReason reason = DropReason::kNone;
  VersionClass version = VersionClass::kNotCounted;
  uint16_t length = 0;          // reply octets written to `out`
  bool stamp_transmit = false;  // the reply needs its transmit timestamp written
  bool kod = false;
  bool unsynchronised = false;  // replied with LI 3
  bool v1_mode0 = false;
  bool symmetric = false;
};

// Per-batch inputs: the reply fields from the time state, and the policy.
struct BatchContext {
  wire::ServerInfo server;
  bool synchronised = false;
  clock::UnsyncAction unsynchronised = clock::UnsyncAction::kReply;
};

BatchContext make_context(const clock::TimeState& state, base::RealTime now,
                          clock::UnsyncAction unsynchronised);

// Decides about one datagram. `truncated`: longer than the receive buffer. `receive`: the
// request's receive timestamp (T2). A reply is built in `out` (at least 48 octets) and is never
// longer than the request.
Decision decide(std::span<const uint8_t> request, bool truncated, uint16_t source_port,
                base::NtpTimestamp receive, const BatchContext& context, std::span<uint8_t> out);

// Adds one decision to a worker's counters (received, version, drop buckets, served kinds).
void count(const Decision& decision, stats::WorkerCounters& counters);

}  // namespace strata::server
