// Sent datagrams from the error queue (see tx_frame.h).
#include "io/tx_frame.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"
#include "base/frame_constants.h"

namespace strata::io {

namespace {

// The datagram from its IP header on; nothing when it is not IPv4/IPv6 carrying UDP.
std::optional<SentDatagram> parse_ip(std::span<const uint8_t> p) {
  if (p.empty()) return std::nullopt;
  SentDatagram d;
  size_t udp = 0;
  size_t end = p.size();  // a cut-short capture ends where our buffer did
  if ((p[0] >> 4) == 4) {
    const size_t ihl = size_t{p[0] & 0x0fu} * 4;
    if (p.size() < 20 || ihl < 20 || p[9] != base::kProtoUdp) return std::nullopt;
    if ((base::load_be16(p.data() + 6) & 0x1fff) != 0) return std::nullopt;  // a later fragment
    const size_t total = base::load_be16(p.data() + 2);
    if (total < ihl + 8) return std::nullopt;
    end = std::min(end, total);
    udp = ihl;
    d.peer.address.family = base::Family::kV4;
    std::memcpy(d.peer.address.bytes.data(), p.data() + 16, 4);
  } else if ((p[0] >> 4) == 6) {
    if (p.size() < 40 || p[6] != base::kProtoUdp) return std::nullopt;
    end = std::min(end, size_t{40} + base::load_be16(p.data() + 4));
    udp = 40;
    d.peer.address.family = base::Family::kV6;
    std::memcpy(d.peer.address.bytes.data(), p.data() + 24, 16);
  } else {
    return std::nullopt;
  }
  if (end < udp + 8) return std::nullopt;
  const size_t udp_length = base::load_be16(p.data() + udp + 4);
  if (udp_length < 8) return std::nullopt;
  end = std::min(end, udp + udp_length);
  d.peer.port = base::load_be16(p.data() + udp + 2);
  d.payload = p.subspan(udp + 8, end - udp - 8);
  return d;
}

}  // namespace

std::optional<SentDatagram> parse_sent(std::span<const uint8_t> frame) {
  // Ethernet first (its EtherType names what follows); else a bare IP packet.
  if (frame.size() >= 14) {
    size_t off = 14;
    uint16_t type = base::load_be16(frame.data() + 12);
    for (int tags = 0; tags < 2 && (type == base::kEtherVlan || type == base::kEtherQinQ) && frame.size() >= off + 4; ++tags) {
      type = base::load_be16(frame.data() + off + 2);
      off += 4;
    }
    if (type == base::kEtherIpv4 || type == base::kEtherIpv6) {
      const auto ip = frame.subspan(off);
      if (!ip.empty() && (ip[0] >> 4) == (type == base::kEtherIpv4 ? 4 : 6))
        if (auto d = parse_ip(ip)) return d;
    }
  }
  return parse_ip(frame);
}

}  // namespace strata::io
