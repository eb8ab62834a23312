// The AF_XDP backend's view of a frame: Ethernet (up to two VLAN tags), IPv4 or IPv6, UDP.
// parse_frame() checks every length the XDP program did not (the program only makes sure the
// headers it reads are there) and finds the payload and both endpoints; write_reply() turns
// the request's frame into the reply in place: addresses and ports swapped, fresh IP and UDP
// headers (IPv4 without options, DF, TTL 64; IPv6 hop limit 64) and both checksums computed
// from scratch, never derived from the request's (a veth request from a local socket carries
// a partial checksum). Pure functions on bytes: unit-tested and fuzzed without a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/net.h"

namespace strata::io {

struct FrameView {
  uint16_t l3 = 0;              // offset of the IP header (after Ethernet and VLAN tags)
  uint16_t payload = 0;         // offset of the UDP payload
  uint16_t payload_length = 0;  // UDP length - 8
  base::Endpoint peer;          // source address and port
  base::Endpoint local;         // destination address and port
};

enum class FrameError : uint8_t {
  kNone,
  kShort,         // headers cut short
  kNotUdp,        // not IPv4/IPv6 carrying UDP directly (the program should have passed it)
  kBadLength,     // IP and UDP lengths disagree with each other or with the frame
  kFragment,      // IPv4 fragment
  kZeroChecksum,  // IPv6 UDP with checksum 0 (RFC 8200 section 8.1: must be dropped)
};

struct ParsedFrame {
  FrameView view;
  FrameError error = FrameError::kNone;
};

ParsedFrame parse_frame(std::span<const uint8_t> frame);

// Writes the reply carrying `payload` over the request `view` was parsed from, in `frame`
// (the request's bytes, `capacity` octets available from its start). Returns the reply
// frame's length, or 0 when it would not fit.
size_t write_reply(uint8_t* frame, size_t capacity, const FrameView& view,
                   std::span<const uint8_t> payload);

// The Internet checksum (RFC 1071) of `bytes` added to `sum` (not folded, not inverted).
uint64_t checksum_add(uint64_t sum, std::span<const uint8_t> bytes);
// Folds and inverts a checksum_add() total.
uint16_t checksum_finish(uint64_t sum);

}  // namespace strata::io
