// A sent datagram as the kernel's error queue hands it back with its transmit timestamp
// (SO_TIMESTAMPING, MSG_ERRQUEUE): the whole packet from its link-layer header (Ethernet, up
// to two VLAN tags; loopback has an all-zero one) or, on devices without one (tun, WireGuard),
// from its IP header, and possibly cut short by our buffer, which only needs the first
// octets of the payload. parse_sent() finds the destination and what there is of the UDP
// payload. Pure: unit-tested and fuzzed without a kernel.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "base/net.h"

namespace strata::io {

struct SentDatagram {
  base::Endpoint peer;                // the destination: the client
  std::span<const uint8_t> payload;   // the UDP payload, as much of it as `frame` holds
};

std::optional<SentDatagram> parse_sent(std::span<const uint8_t> frame);

}  // namespace strata::io
