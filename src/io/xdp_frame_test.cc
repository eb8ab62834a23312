// Frame parsing and in-place replies of the AF_XDP backend.
#include "io/xdp_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::io {
namespace {

// The RFC 1071 sum the plain way, 16 bits at a time, as a second opinion.
uint16_t reference_checksum(const std::vector<uint8_t>& bytes) {
  uint32_t sum = 0;
  for (size_t i = 0; i < bytes.size(); i += 2) {
    uint32_t word = uint32_t{bytes[i]} << 8;
    if (i + 1 < bytes.size()) word |= bytes[i + 1];
    sum += word;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

const uint8_t kServerMac[6] = {0x02, 0, 0, 0, 0, 1};
const uint8_t kClientMac[6] = {0x02, 0, 0, 0, 0, 2};

std::vector<uint8_t> ethernet(uint16_t type, std::vector<uint16_t> vlans = {}) {
  std::vector<uint8_t> f(kServerMac, kServerMac + 6);
  f.insert(f.end(), kClientMac, kClientMac + 6);
  for (uint16_t tpid : vlans) {
    f.push_back(static_cast<uint8_t>(tpid >> 8));
    f.push_back(static_cast<uint8_t>(tpid));
    f.push_back(0);
    f.push_back(7);
  }
  f.push_back(static_cast<uint8_t>(type >> 8));
  f.push_back(static_cast<uint8_t>(type));
  return f;
}

void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}

// An IPv4 request from 198.51.100.7:40000 to 192.0.2.1:123 with `options` octets of options.
std::vector<uint8_t> request_v4(size_t payload, std::vector<uint16_t> vlans = {}, size_t options = 0,
                                uint16_t frag = 0) {
  std::vector<uint8_t> f = ethernet(0x0800, vlans);
  const size_t ip = f.size();
  f.resize(ip + 20 + options + 8 + payload, 0);
  f[ip] = static_cast<uint8_t>(0x40 | (20 + options) / 4);
  put16(f, ip + 2, static_cast<uint16_t>(20 + options + 8 + payload));
  put16(f, ip + 6, frag);
  f[ip + 8] = 55;
  f[ip + 9] = 17;
  const uint8_t src[4] = {198, 51, 100, 7}, dst[4] = {192, 0, 2, 1};
  std::copy(src, src + 4, f.begin() + static_cast<long>(ip + 12));
  std::copy(dst, dst + 4, f.begin() + static_cast<long>(ip + 16));
  const size_t udp = ip + 20 + options;
  put16(f, udp, 40000);
  put16(f, udp + 2, 123);
  put16(f, udp + 4, static_cast<uint16_t>(8 + payload));
  put16(f, udp + 6, 0xbeef);  // a partial checksum, as veth delivers one: never checked
  for (size_t i = 0; i < payload; ++i) f[udp + 8 + i] = static_cast<uint8_t>(i + 1);
  return f;
}

std::vector<uint8_t> request_v6(size_t payload, uint16_t checksum = 0x1234) {
  std::vector<uint8_t> f = ethernet(0x86dd);
  const size_t ip = f.size();
  f.resize(ip + 40 + 8 + payload, 0);
  f[ip] = 0x60;
  put16(f, ip + 4, static_cast<uint16_t>(8 + payload));
  f[ip + 6] = 17;
  f[ip + 7] = 64;
  f[ip + 8] = 0x20;  // 2001:db8::7 -> 2001:db8::1
  f[ip + 9] = 0x01;
  f[ip + 10] = 0x0d;
  f[ip + 11] = 0xb8;
  f[ip + 23] = 7;
  std::copy(f.begin() + static_cast<long>(ip + 8), f.begin() + static_cast<long>(ip + 24),
            f.begin() + static_cast<long>(ip + 24));
  f[ip + 39] = 1;
  const size_t udp = ip + 40;
  put16(f, udp, 40001);
  put16(f, udp + 2, 123);
  put16(f, udp + 4, static_cast<uint16_t>(8 + payload));
  put16(f, udp + 6, checksum);
  return f;
}

TEST(XdpFrame, ParsesIpv4WithPaddingAndVlanTags) {
  for (const auto& vlans : std::vector<std::vector<uint16_t>>{{}, {0x8100}, {0x88a8, 0x8100}}) {
    std::vector<uint8_t> f = request_v4(48, vlans);
    f.resize(f.size() + 6, 0xee);  // Ethernet padding past the IP datagram
    const ParsedFrame p = parse_frame(f);
    ASSERT_EQ(p.error, FrameError::kNone);
    EXPECT_EQ(p.view.l3, 14 + 4 * vlans.size());
    EXPECT_EQ(p.view.payload, p.view.l3 + 28);
    EXPECT_EQ(p.view.payload_length, 48);
    EXPECT_EQ(p.view.peer.to_string(), "198.51.100.7:40000");
    EXPECT_EQ(p.view.local.to_string(), "192.0.2.1:123");
  }
}

TEST(XdpFrame, RefusesWhatIsNotOneWholeUdpDatagram) {
  EXPECT_EQ(parse_frame(request_v4(48, {}, 0, 0x2000)).error, FrameError::kFragment);  // MF
  EXPECT_EQ(parse_frame(request_v4(48, {}, 0, 0x0010)).error, FrameError::kFragment);  // offset
  std::vector<uint8_t> f = request_v4(48);
  EXPECT_EQ(parse_frame({f.data(), 30}).error, FrameError::kShort);
  std::vector<uint8_t> longer = f;
  put16(longer, 14 + 2, 200);  // IP length past the frame
  EXPECT_EQ(parse_frame(longer).error, FrameError::kBadLength);
  std::vector<uint8_t> udp_short = f;
  put16(udp_short, 14 + 20 + 4, 20);  // UDP length disagrees with IP's
  EXPECT_EQ(parse_frame(udp_short).error, FrameError::kBadLength);
  std::vector<uint8_t> tcp = f;
  tcp[14 + 9] = 6;
  EXPECT_EQ(parse_frame(tcp).error, FrameError::kNotUdp);
  EXPECT_EQ(parse_frame({f.data(), 13}).error, FrameError::kShort);
  std::vector<uint8_t> arp = ethernet(0x0806);
  arp.resize(60);
  EXPECT_EQ(parse_frame(arp).error, FrameError::kNotUdp);
  EXPECT_EQ(parse_frame(request_v6(48, 0)).error, FrameError::kZeroChecksum);
  std::vector<uint8_t> ext = request_v6(48);
  ext[14 + 6] = 0;  // hop-by-hop options first
  EXPECT_EQ(parse_frame(ext).error, FrameError::kNotUdp);
}

void expect_valid_udp(const std::vector<uint8_t>& f, size_t l3, bool v4) {
  const size_t udp = l3 + (v4 ? 20 : 40);
  const size_t udp_length = size_t{f[udp + 4]} << 8 | f[udp + 5];
  std::vector<uint8_t> pseudo;
  if (v4) pseudo.assign(f.begin() + static_cast<long>(l3 + 12), f.begin() + static_cast<long>(l3 + 20));
  else pseudo.assign(f.begin() + static_cast<long>(l3 + 8), f.begin() + static_cast<long>(l3 + 40));
  pseudo.insert(pseudo.end(), {0, 17, static_cast<uint8_t>(udp_length >> 8), static_cast<uint8_t>(udp_length)});
  pseudo.insert(pseudo.end(), f.begin() + static_cast<long>(udp), f.begin() + static_cast<long>(udp + udp_length));
  if (pseudo.size() % 2 == 1) pseudo.push_back(0);
  EXPECT_EQ(reference_checksum(pseudo), 0) << "UDP checksum";
  EXPECT_NE(f[udp + 6] << 8 | f[udp + 7], 0);
}

TEST(XdpFrame, Ipv4ReplyInPlace) {
  for (size_t options : {size_t{0}, size_t{8}}) {
    std::vector<uint8_t> f = request_v4(48, {0x8100}, options);
    const ParsedFrame p = parse_frame(f);
    ASSERT_EQ(p.error, FrameError::kNone);
    std::vector<uint8_t> reply(47);  // odd: the checksum pads it
    for (size_t i = 0; i < reply.size(); ++i) reply[i] = static_cast<uint8_t>(0xa0 + i);
    const size_t n = write_reply(f.data(), f.size(), p.view, reply);
    ASSERT_EQ(n, 18 + 20 + 8 + reply.size());
    f.resize(n);
    EXPECT_TRUE(std::equal(kClientMac, kClientMac + 6, f.begin()));
    EXPECT_TRUE(std::equal(kServerMac, kServerMac + 6, f.begin() + 6));
    EXPECT_EQ(f[12], 0x81);  // the VLAN tag stays
    const size_t ip = 18;
    EXPECT_EQ(f[ip], 0x45);  // no options in the reply
    EXPECT_EQ(f[ip + 2] << 8 | f[ip + 3], 20 + 8 + 47);
    EXPECT_EQ(f[ip + 4] << 8 | f[ip + 5], 0);       // identification
    EXPECT_EQ(f[ip + 6] << 8 | f[ip + 7], 0x4000);  // DF
    EXPECT_EQ(f[ip + 8], 64);
    EXPECT_EQ(reference_checksum({f.begin() + ip, f.begin() + ip + 20}), 0) << "IPv4 header checksum";
    const ParsedFrame r = parse_frame(f);
    ASSERT_EQ(r.error, FrameError::kNone);
    EXPECT_EQ(r.view.peer.to_string(), "192.0.2.1:123");
    EXPECT_EQ(r.view.local.to_string(), "198.51.100.7:40000");
    EXPECT_TRUE(std::equal(reply.begin(), reply.end(), f.begin() + r.view.payload));
    expect_valid_udp(f, ip, true);
  }
}

TEST(XdpFrame, Ipv6ReplyAlwaysHasAChecksum) {
  std::vector<uint8_t> f = request_v6(68);
  const ParsedFrame p = parse_frame(f);
  ASSERT_EQ(p.error, FrameError::kNone);
  EXPECT_EQ(p.view.peer.to_string(), "[2001:db8::7]:40001");
  std::vector<uint8_t> reply(48, 0x5a);
  const size_t n = write_reply(f.data(), f.size(), p.view, reply);
  ASSERT_EQ(n, 14 + 40 + 8 + 48);
  f.resize(n);
  EXPECT_EQ(f[14] >> 4, 6);
  EXPECT_EQ(f[14 + 7], 64);
  const ParsedFrame r = parse_frame(f);
  ASSERT_EQ(r.error, FrameError::kNone);
  EXPECT_EQ(r.view.local.to_string(), "[2001:db8::7]:40001");
  expect_valid_udp(f, 14, false);
}

TEST(XdpFrame, ReplyThatDoesNotFitIsRefused) {
  std::vector<uint8_t> f = request_v4(48);
  const ParsedFrame p = parse_frame(f);
  std::vector<uint8_t> reply(49);
  const size_t request = f.size();
  EXPECT_EQ(write_reply(f.data(), request, p.view, reply), 0u);
  f.resize(request + 1);  // one octet more room: it fits
  EXPECT_EQ(write_reply(f.data(), f.size(), p.view, reply), request + 1);
}

TEST(XdpFrame, EmptyReplyIsAHeaderOnlyDatagram) {
  // An empty payload (the fuzzer's find: nothing to move, and no pointer to move it from).
  std::vector<uint8_t> f = request_v4(0);
  const ParsedFrame p = parse_frame(f);
  ASSERT_EQ(p.error, FrameError::kNone);
  EXPECT_EQ(p.view.payload_length, 0u);
  const size_t n = write_reply(f.data(), f.size(), p.view, std::span<const uint8_t>{});
  ASSERT_EQ(n, 14 + 20 + 8u);
  const ParsedFrame r = parse_frame({f.data(), n});
  ASSERT_EQ(r.error, FrameError::kNone);
  EXPECT_EQ(r.view.payload_length, 0u);
  expect_valid_udp(f, 14, true);
}

TEST(XdpFrame, ChecksumMatchesTheReference) {
  std::vector<uint8_t> bytes;
  for (size_t n = 0; n < 300; ++n) {
    EXPECT_EQ(checksum_finish(checksum_add(0, bytes)), reference_checksum(bytes)) << n;
    bytes.push_back(static_cast<uint8_t>(n * 37 + 0xf0));
  }
  std::vector<uint8_t> ones(4000, 0xff);  // many carries
  EXPECT_EQ(checksum_finish(checksum_add(0, ones)), reference_checksum(ones));
}

}  // namespace
}  // namespace strata::io
