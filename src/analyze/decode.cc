// Frame decoding (see decode.h).
#include "analyze/decode.h"

#include <cstring>

#include "base/bytes.h"
#include "base/frame_constants.h"

namespace strata::analyze {

namespace {

// Each step fills the one Decoded of decode() in place: no copies of it on the way down.
void truncated(Decoded& d) { d.kind = Frame::kTruncated; }

void udp(Decoded& d, std::span<const uint8_t> rest, size_t udp_length_from_ip) {
  if (rest.size() < 8) return truncated(d);
  d.source_port = base::load_be16(&rest[0]);
  d.destination_port = base::load_be16(&rest[2]);
  const size_t udp_length = base::load_be16(&rest[4]);
  if (udp_length < 8 || udp_length > udp_length_from_ip) return truncated(d);  // inconsistent headers: damaged
  const size_t payload = udp_length - 8;
  const size_t have = rest.size() - 8;
  d.payload = rest.subspan(8, have < payload ? have : payload);
  d.payload_complete = have >= payload;
  d.kind = Frame::kUdp;
}

void ipv4(Decoded& d, std::span<const uint8_t> p) {
  if (p.size() < 20) return truncated(d);
  if ((p[0] >> 4) != 4) {
    d.kind = Frame::kNotIp;
    return;
  }
  const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  const size_t total = base::load_be16(&p[2]);
  if (ihl < 20 || total < ihl || p.size() < ihl) return truncated(d);
  d.family = base::Family::kV4;
  d.ip_length = static_cast<uint32_t>(total);
  // Network order as IpAddress keeps it; the other 12 octets are zero (decode() cleared d).
  d.source.family = d.destination.family = base::Family::kV4;
  std::memcpy(d.source.bytes.data(), &p[12], 4);
  std::memcpy(d.destination.bytes.data(), &p[16], 4);
  const uint16_t frag = base::load_be16(&p[6]);
  if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) {  // more fragments, or an offset
    d.kind = Frame::kFragment;
    return;
  }
  if (p[9] != base::kProtoUdp) {
    d.kind = Frame::kOtherIp;
    return;
  }
  const size_t end = total < p.size() ? total : p.size();  // Ethernet may pad short frames
  udp(d, p.subspan(ihl, end - ihl), total - ihl);
}

void ipv6(Decoded& d, std::span<const uint8_t> p) {
  if (p.size() < 40) return truncated(d);
  if ((p[0] >> 4) != 6) {
    d.kind = Frame::kNotIp;
    return;
  }
  d.family = base::Family::kV6;
  const size_t payload_length = base::load_be16(&p[4]);
  d.ip_length = static_cast<uint32_t>(40 + payload_length);
  d.source.family = d.destination.family = base::Family::kV6;
  std::memcpy(d.source.bytes.data(), &p[8], 16);
  std::memcpy(d.destination.bytes.data(), &p[24], 16);
  uint8_t next = p[6];
  size_t at = 40;
  const size_t end = 40 + payload_length < p.size() ? 40 + payload_length : p.size();
  // Extension headers: hop-by-hop (0), routing (43), destination options (60) are walked;
  // a fragment header (44) makes it a fragment.
  for (int guard = 0; guard < 8; ++guard) {
    if (next == 0 || next == 43 || next == 60) {
      if (at + 8 > end) return truncated(d);
      const size_t len = (size_t{p[at + 1]} + 1) * 8;
      next = p[at];
      at += len;
      continue;
    }
    break;
  }
  if (next == 44) {
    d.kind = Frame::kFragment;
    return;
  }
  if (next != base::kProtoUdp) {
    d.kind = Frame::kOtherIp;
    return;
  }
  if (at > end) return truncated(d);
  udp(d, p.subspan(at, end - at), 40 + payload_length - at);
}

void by_ethertype(Decoded& d, uint16_t type, std::span<const uint8_t> p) {
  if (type == base::kEtherIpv4) return ipv4(d, p);
  if (type == base::kEtherIpv6) return ipv6(d, p);
  d.kind = Frame::kNotIp;
}

void by_version(Decoded& d, std::span<const uint8_t> p) {
  if (p.empty()) return truncated(d);
  if ((p[0] >> 4) == 4) return ipv4(d, p);
  if ((p[0] >> 4) == 6) return ipv6(d, p);
  d.kind = Frame::kNotIp;
}

}  // namespace

bool link_supported(int t) {
  switch (t) {
    case kLinkNull:
    case kLinkEthernet:
    case kLinkRaw:
    case kLinkRawAlt:
    case kLinkLinuxSll:
    case kLinkIpv4:
    case kLinkIpv6:
    case kLinkLinuxSll2: return true;
    default: return false;
  }
}

void decode(int link_type, std::span<const uint8_t> f, Decoded& d) {
  d = Decoded{};
  switch (link_type) {
    case kLinkEthernet: {
      if (f.size() < 14) return truncated(d);
      size_t at = 12;
      uint16_t type = base::load_be16(&f[at]);
      at += 2;
      for (int tags = 0; tags < 4 && (type == base::kEtherVlan || type == base::kEtherQinQ || type == base::kEtherQinQOld); ++tags) {
        if (f.size() < at + 4) return truncated(d);
        type = base::load_be16(&f[at + 2]);
        at += 4;
      }
      return by_ethertype(d, type, f.subspan(at));
    }
    case kLinkLinuxSll:  // 16 octets: type, ARPHRD, address length, 8 of address, protocol
      if (f.size() < 16) return truncated(d);
      return by_ethertype(d, base::load_be16(&f[14]), f.subspan(16));
    case kLinkLinuxSll2:  // 20 octets: protocol first
      if (f.size() < 20) return truncated(d);
      return by_ethertype(d, base::load_be16(&f[0]), f.subspan(20));
    case kLinkNull: {  // address family in the capturing host's order: 2 = IPv4, 24/28/30 = IPv6
      if (f.size() < 4) return truncated(d);
      uint32_t family = 0;
      std::memcpy(&family, f.data(), 4);
      if (family > 0xffff) family = __builtin_bswap32(family);
      if (family == 2) return ipv4(d, f.subspan(4));
      if (family == 24 || family == 28 || family == 30 || family == 10) return ipv6(d, f.subspan(4));
      d.kind = Frame::kNotIp;
      return;
    }
    case kLinkRaw:
    case kLinkRawAlt:
      return by_version(d, f);
    case kLinkIpv4:
      return ipv4(d, f);
    case kLinkIpv6:
      return ipv6(d, f);
    default:
      d.kind = Frame::kNotIp;
      return;
  }
}

}  // namespace strata::analyze
