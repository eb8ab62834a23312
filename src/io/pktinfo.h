// Names the source address of an outgoing datagram with an IP_PKTINFO / IPV6_PKTINFO control
// message: stratad's wildcard sockets reply from the address each request hit, and
// `strata load` speaks for many client addresses from one socket. Any thread; no allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "base/net.h"

namespace strata::io {

// Room for the larger (IPv6) source-address control message.
inline constexpr size_t kPktinfoSpace = CMSG_SPACE(sizeof(in6_pktinfo));

// Points `h` at `control` (kPktinfoSpace octets, cmsghdr-aligned) holding `source`.
// `ifindex` (IPv6; 0: any interface) pins the outgoing interface, which link-local and
// multicast addresses need. A multicast source (a request to a group) leaves the address to
// the kernel.
inline void set_source_address(msghdr& h, uint8_t* control, const base::IpAddress& source,
                               int ifindex = 0) {
  std::memset(control, 0, kPktinfoSpace);
  cmsghdr* c = reinterpret_cast<cmsghdr*>(control);
  h.msg_control = control;
  if (source.family == base::Family::kV4) {
    in_pktinfo info{};
    std::memcpy(&info.ipi_spec_dst, source.bytes.data(), 4);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof info);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    h.msg_controllen = CMSG_SPACE(sizeof info);
    return;
  }
  in6_pktinfo info{};
  if (!source.is_multicast()) std::memcpy(&info.ipi6_addr, source.bytes.data(), 16);
  info.ipi6_ifindex = static_cast<unsigned>(ifindex);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof info);
  std::memcpy(CMSG_DATA(c), &info, sizeof info);
  h.msg_controllen = CMSG_SPACE(sizeof info);
}

}  // namespace strata::io
