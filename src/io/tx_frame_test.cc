// The error queue's sent datagrams: Ethernet (loopback's all-zero header), VLAN-tagged, bare
// IP (tun), IPv4 and IPv6, cut short by the buffer, and what is not ours.
#include "io/tx_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::io {
namespace {

std::vector<uint8_t> ipv4_udp(size_t payload, uint8_t first = 0x24) {
  std::vector<uint8_t> p(28 + payload, 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>((28 + payload) >> 8);
  p[3] = static_cast<uint8_t>(28 + payload);
  p[6] = 0x40;  // DF
  p[9] = 17;
  p[12] = 127, p[15] = 1;                      // source 127.0.0.1
  p[16] = 192, p[17] = 0, p[18] = 2, p[19] = 7;  // destination 192.0.2.7
  p[20] = 0, p[21] = 123;
  p[22] = 0x9c, p[23] = 0x41;  // port 40001
  p[24] = static_cast<uint8_t>((8 + payload) >> 8);
  p[25] = static_cast<uint8_t>(8 + payload);
  if (payload > 0) p[28] = first;
  return p;
}

std::vector<uint8_t> ipv6_udp(size_t payload) {
  std::vector<uint8_t> p(48 + payload, 0);
  p[0] = 0x60;
  p[4] = static_cast<uint8_t>((8 + payload) >> 8);
  p[5] = static_cast<uint8_t>(8 + payload);
  p[6] = 17;
  p[24] = 0x20, p[25] = 0x01, p[26] = 0x0d, p[27] = 0xb8, p[39] = 7;  // 2001:db8::7
  p[42] = 0x9c, p[43] = 0x41;
  p[44] = static_cast<uint8_t>((8 + payload) >> 8);
  p[45] = static_cast<uint8_t>(8 + payload);
  if (payload > 0) p[48] = 0x24;
  return p;
}

std::vector<uint8_t> ethernet(uint16_t type, const std::vector<uint8_t>& ip, int vlans = 0) {
  std::vector<uint8_t> f(12, 0);
  for (int i = 0; i < vlans; ++i) f.insert(f.end(), {0x81, 0x00, 0x00, 0x05});
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

TEST(TxFrame, LoopbackEthernetIpv4) {
  const auto f = ethernet(0x0800, ipv4_udp(48));
  ASSERT_EQ(f.size(), 90u);  // what the kernel gave back on loopback
  const auto d = parse_sent(f);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->peer.to_string(), "192.0.2.7:40001");
  EXPECT_EQ(d->payload.size(), 48u);
  EXPECT_EQ(d->payload[0], 0x24);
}

TEST(TxFrame, Ipv6AndVlanTags) {
  for (int vlans = 0; vlans <= 2; ++vlans) {
    const auto d = parse_sent(ethernet(0x86dd, ipv6_udp(48), vlans));
    ASSERT_TRUE(d) << vlans;
    EXPECT_EQ(d->peer.to_string(), "[2001:db8::7]:40001");
    EXPECT_EQ(d->payload.size(), 48u);
  }
  EXPECT_EQ(ethernet(0x86dd, ipv6_udp(48)).size(), 110u);
}

TEST(TxFrame, BareIpFromATunnel) {
  const auto d4 = parse_sent(ipv4_udp(48));
  ASSERT_TRUE(d4);
  EXPECT_EQ(d4->peer.to_string(), "192.0.2.7:40001");
  const auto d6 = parse_sent(ipv6_udp(48));
  ASSERT_TRUE(d6);
  EXPECT_EQ(d6->payload.size(), 48u);
}

TEST(TxFrame, CutShortKeepsWhatThereIs) {
  auto f = ethernet(0x0800, ipv4_udp(1000));  // an NTS reply
  f.resize(256);
  const auto d = parse_sent(f);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->payload.size(), 256u - 42);
  f.resize(14 + 28);  // headers only
  ASSERT_TRUE(parse_sent(f));
  EXPECT_TRUE(parse_sent(f)->payload.empty());
  f.resize(14 + 27);
  EXPECT_FALSE(parse_sent(f));
}

TEST(TxFrame, PaddingAfterTheDatagramIsNotPayload) {
  auto f = ethernet(0x0800, ipv4_udp(4));
  f.resize(60, 0xee);  // Ethernet's minimum
  EXPECT_EQ(parse_sent(f)->payload.size(), 4u);
}

TEST(TxFrame, NotOurs) {
  auto tcp = ipv4_udp(48);
  tcp[9] = 6;
  EXPECT_FALSE(parse_sent(ethernet(0x0800, tcp)));
  auto fragment = ipv4_udp(48);
  fragment[7] = 0x10;  // offset 16
  EXPECT_FALSE(parse_sent(ethernet(0x0800, fragment)));
  auto bad_udp = ipv4_udp(48);
  bad_udp[24] = 0, bad_udp[25] = 7;  // UDP length under its header
  EXPECT_FALSE(parse_sent(bad_udp));
  EXPECT_FALSE(parse_sent(ethernet(0x0806, std::vector<uint8_t>(28, 0))));  // ARP
  EXPECT_FALSE(parse_sent({}));
}

}  // namespace
}  // namespace strata::io
