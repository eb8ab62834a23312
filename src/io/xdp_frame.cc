// Frame parsing and in-place replies for the AF_XDP backend (see xdp_frame.h).
#include "io/xdp_frame.h"

#include <cstring>

#include "base/bytes.h"
#include "base/frame_constants.h"

namespace strata::io {

namespace {

constexpr uint8_t kTtl = 64;  // Linux's default (net.ipv4.ip_default_ttl, IPv6 hop_limit)

using base::load_be16;
using base::store_be16;

}  // namespace

uint64_t checksum_add(uint64_t sum, std::span<const uint8_t> bytes) {
  const uint8_t* p = bytes.data();
  size_t n = bytes.size();
  // 32-bit big-endian words into a 64-bit accumulator: no carry is lost before the fold.
  while (n >= 4) {
    sum += base::load_be32(p);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    sum += load_be16(p);
    p += 2;
    n -= 2;
  }
  if (n == 1) sum += uint32_t{p[0]} << 8;
  return sum;
}

uint16_t checksum_finish(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

ParsedFrame parse_frame(std::span<const uint8_t> frame) {
  ParsedFrame r;
  const uint8_t* f = frame.data();
  const size_t len = frame.size();
  size_t off = 14;
  if (len < off) return {{}, FrameError::kShort};
  uint16_t type = load_be16(f + 12);
  for (int tags = 0; tags < 2 && (type == base::kEtherVlan || type == base::kEtherQinQ); ++tags) {
    if (len < off + 4) return {{}, FrameError::kShort};
    type = load_be16(f + off + 2);
    off += 4;
  }
  FrameView& v = r.view;
  v.l3 = static_cast<uint16_t>(off);
  size_t udp = 0, ip_end = 0;
  if (type == base::kEtherIpv4) {
    if (len < off + 20) return {{}, FrameError::kShort};
    const uint8_t* ip = f + off;
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20) return {{}, FrameError::kNotUdp};
    if (ip[9] != base::kProtoUdp) return {{}, FrameError::kNotUdp};
    if ((load_be16(ip + 6) & 0x3fff) != 0) return {{}, FrameError::kFragment};
    const size_t total = load_be16(ip + 2);
    if (total < ihl + 8 || off + total > len) return {{}, FrameError::kBadLength};
    udp = off + ihl;
    ip_end = off + total;  // Ethernet padding after it is not ours
    v.peer.address.family = v.local.address.family = base::Family::kV4;
    std::memcpy(v.peer.address.bytes.data(), ip + 12, 4);
    std::memcpy(v.local.address.bytes.data(), ip + 16, 4);
  } else if (type == base::kEtherIpv6) {
    if (len < off + 40) return {{}, FrameError::kShort};
    const uint8_t* ip = f + off;
    if ((ip[0] >> 4) != 6 || ip[6] != base::kProtoUdp) return {{}, FrameError::kNotUdp};
    const size_t payload = load_be16(ip + 4);
    if (payload < 8 || off + 40 + payload > len) return {{}, FrameError::kBadLength};
    udp = off + 40;
    ip_end = udp + payload;
    v.peer.address.family = v.local.address.family = base::Family::kV6;
    std::memcpy(v.peer.address.bytes.data(), ip + 8, 16);
    std::memcpy(v.local.address.bytes.data(), ip + 24, 16);
  } else {
    return {{}, FrameError::kNotUdp};
  }
  if (udp + 8 > len) return {{}, FrameError::kShort};
  const size_t udp_length = load_be16(f + udp + 4);
  if (udp_length < 8 || udp + udp_length != ip_end) return {{}, FrameError::kBadLength};
  if (type == base::kEtherIpv6 && load_be16(f + udp + 6) == 0) return {{}, FrameError::kZeroChecksum};
  v.peer.port = load_be16(f + udp);
  v.local.port = load_be16(f + udp + 2);
  v.payload = static_cast<uint16_t>(udp + 8);
  v.payload_length = static_cast<uint16_t>(udp_length - 8);
  return r;
}

size_t write_reply(uint8_t* frame, size_t capacity, const FrameView& view,
                   std::span<const uint8_t> payload) {
  const bool v4 = view.peer.address.family == base::Family::kV4;
  const size_t ip_header = v4 ? 20 : 40;
  const size_t udp = view.l3 + ip_header;
  const size_t end = udp + 8 + payload.size();
  if (end > capacity || payload.size() > 0xffff - 8 - ip_header) return 0;
  // Ethernet: back to where it came from (the VLAN tags stay as they were).
  uint8_t mac[6];
  std::memcpy(mac, frame, 6);
  std::memmove(frame, frame + 6, 6);
  std::memcpy(frame + 6, mac, 6);
  // The payload first: with IPv4 options in the request it moves down over them.
  if (!payload.empty()) std::memmove(frame + udp + 8, payload.data(), payload.size());
  const uint16_t udp_length = static_cast<uint16_t>(8 + payload.size());
  uint8_t* ip = frame + view.l3;
  const auto& src = view.local.address.bytes;  // the reply leaves from where the request went
  const auto& dst = view.peer.address.bytes;
  uint64_t pseudo = 0;
  if (v4) {
    ip[0] = 0x45;
    ip[1] = 0;                                        // DSCP/ECN 0, as our sockets send
    store_be16(ip + 2, static_cast<uint16_t>(20 + udp_length));
    store_be16(ip + 4, 0);                                 // identification: atomic datagram
    store_be16(ip + 6, 0x4000);                            // DF (RFC 6864)
    ip[8] = kTtl;
    ip[9] = base::kProtoUdp;
    store_be16(ip + 10, 0);
    std::memcpy(ip + 12, src.data(), 4);
    std::memcpy(ip + 16, dst.data(), 4);
    store_be16(ip + 10, checksum_finish(checksum_add(0, {ip, 20})));
    pseudo = checksum_add(0, {ip + 12, 8});
  } else {
    ip[0] = 0x60;                                     // traffic class 0, flow label 0
    ip[1] = ip[2] = ip[3] = 0;
    store_be16(ip + 4, udp_length);
    ip[6] = base::kProtoUdp;
    ip[7] = kTtl;
    std::memcpy(ip + 8, src.data(), 16);
    std::memcpy(ip + 24, dst.data(), 16);
    pseudo = checksum_add(0, {ip + 8, 32});
  }
  uint8_t* u = frame + udp;
  store_be16(u, view.local.port);
  store_be16(u + 2, view.peer.port);
  store_be16(u + 4, udp_length);
  store_be16(u + 6, 0);
  pseudo += base::kProtoUdp + udp_length;
  uint16_t sum = checksum_finish(checksum_add(pseudo, {u, udp_length}));
  if (sum == 0) sum = 0xffff;  // 0 means "no checksum" (IPv4) and is invalid (IPv6)
  store_be16(u + 6, sum);
  return end;
}

}  // namespace strata::io
