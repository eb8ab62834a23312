// The link- and network-layer numbers that every frame parser of strata reads: EtherTypes
// (IEEE 802.3, 802.1Q, 802.1ad and the old pre-standard QinQ tag) and UDP's protocol number.
// Used by the AF_XDP frames (io/xdp_frame), the error queue's sent datagrams (io/tx_frame) and
// capture decoding (analyze/decode).
#pragma once

#include <cstdint>

namespace strata::base {

inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr uint16_t kEtherVlan = 0x8100;
inline constexpr uint16_t kEtherQinQ = 0x88a8;
inline constexpr uint16_t kEtherQinQOld = 0x9100;
inline constexpr uint8_t kProtoUdp = 17;

}  // namespace strata::base
