// Frames from a capture down to UDP: the link layer (Ethernet with VLAN tags, Linux cooked
// SLL and SLL2, raw IP, BSD loopback), IPv4 and IPv6 (extension headers walked, fragments
// recognised), then the UDP ports and payload. Pure and allocation-free: `strata analyze`
// calls it for every frame, the fuzzer for anything. Written here because it is the hot
// loop of the analyser: libpcap reads the files, this reads the frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/net.h"

namespace strata::analyze {

// Link types by their DLT_ number as libpcap reports them.
enum LinkType : int {
  kLinkNull = 0,        // BSD loopback: 4-octet address family in host order
  kLinkEthernet = 1,
  kLinkRaw = 12,        // DLT_RAW on Linux (LINKTYPE_RAW 101)
  kLinkRawAlt = 14,     // DLT_RAW on some BSDs
  kLinkLinuxSll = 113,
  kLinkIpv4 = 228,
  kLinkIpv6 = 229,
  kLinkLinuxSll2 = 276,
};

bool link_supported(int link_type);

enum class Frame : uint8_t {
  kUdp,         // a whole UDP datagram: ports and payload are valid
  kFragment,    // an IP fragment (first or later): not reassembled, counted
  kOtherIp,     // IP but not UDP (TCP, ICMP, ...)
  kNotIp,       // ARP, LLDP, ... or a link type's non-IP frame
  kTruncated,   // cut short by the capture's snap length or damaged
};

struct Decoded {
  Frame kind = Frame::kNotIp;
  base::Family family = base::Family::kV4;
  base::IpAddress source;
  base::IpAddress destination;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  uint32_t ip_length = 0;  // octets at the IP level, from the IP header (not the capture)
  std::span<const uint8_t> payload;  // UDP payload as captured (may be shorter if snapped)
  bool payload_complete = false;     // the whole UDP payload is in the capture
};

// Decodes one captured frame of `link_type` into `out` (all of it: nothing of an earlier
// frame stays).
void decode(int link_type, std::span<const uint8_t> frame, Decoded& out);
inline Decoded decode(int link_type, std::span<const uint8_t> frame) {
  Decoded d;
  decode(link_type, frame, d);
  return d;
}

}  // namespace strata::analyze
