// Unit tests of capture decoding and analysis: the cases the generated captures of
// tests/system/test_analyze.py do not reach (padding, extension headers, damage), and the
// client table growing past its first size.
#include <gtest/gtest.h>

#include <algorithm>

#include <vector>

#include "analyze/analysis.h"
#include "analyze/decode.h"
#include "base/bytes.h"

namespace strata::analyze {
namespace {

std::vector<uint8_t> ipv4_udp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, size_t payload) {
  std::vector<uint8_t> p(28 + payload, 0);
  p[0] = 0x45;
  base::store_be16(&p[2], static_cast<uint16_t>(p.size()));
  p[8] = 64;
  p[9] = 17;
  base::store_be32(&p[12], src);
  base::store_be32(&p[16], dst);
  base::store_be16(&p[20], sport);
  base::store_be16(&p[22], dport);
  base::store_be16(&p[24], static_cast<uint16_t>(8 + payload));
  if (payload > 0) p[28] = 4 << 3 | 3;
  return p;
}

// A server's reply (mode 4) to `client`.
std::vector<uint8_t> ipv4_reply(uint32_t client) {
  auto p = ipv4_udp(0xc0000201, client, 123, 40000, 48);
  p[28] = 4 << 3 | 4;
  return p;
}

TEST(AnalyzeDecode, EthernetPaddingIsNotPayload) {
  std::vector<uint8_t> f(14, 0);
  f[12] = 0x08;
  const auto ip = ipv4_udp(0xc6336401, 0xc0000201, 40000, 123, 4);  // 32 octets of IP
  f.insert(f.end(), ip.begin(), ip.end());
  f.resize(60, 0xee);  // padded to Ethernet's minimum
  const Decoded d = decode(kLinkEthernet, f);
  ASSERT_EQ(d.kind, Frame::kUdp);
  EXPECT_EQ(d.ip_length, 32u);
  EXPECT_EQ(d.payload.size(), 4u);
  EXPECT_TRUE(d.payload_complete);
  EXPECT_EQ(d.source.to_string(), "198.51.100.1");
  EXPECT_EQ(d.destination_port, 123);
}

TEST(AnalyzeDecode, SnappedAndDamagedFrames) {
  auto ip = ipv4_udp(1, 2, 3, 123, 48);
  Decoded d = decode(kLinkRaw, std::span<const uint8_t>(ip).first(40));  // snapped in the payload
  ASSERT_EQ(d.kind, Frame::kUdp);
  EXPECT_EQ(d.ip_length, 76u);  // from the header, not the capture
  EXPECT_FALSE(d.payload_complete);
  EXPECT_EQ(decode(kLinkRaw, std::span<const uint8_t>(ip).first(24)).kind, Frame::kTruncated);
  ip[0] = 0x44;  // IHL 16 octets
  EXPECT_EQ(decode(kLinkRaw, ip).kind, Frame::kTruncated);
  ip = ipv4_udp(1, 2, 3, 123, 48);
  base::store_be16(&ip[24], 200);  // UDP longer than IP
  EXPECT_EQ(decode(kLinkRaw, ip).kind, Frame::kTruncated);
  EXPECT_EQ(decode(kLinkEthernet, std::vector<uint8_t>(10, 0)).kind, Frame::kTruncated);
  EXPECT_EQ(decode(kLinkRaw, std::vector<uint8_t>{0x10, 0, 0, 0}).kind, Frame::kNotIp);
  EXPECT_FALSE(link_supported(105));  // 802.11
}

TEST(AnalyzeDecode, Ipv6ExtensionHeadersAreWalked) {
  std::vector<uint8_t> p(40 + 8 + 8 + 48, 0);
  p[0] = 0x60;
  base::store_be16(&p[4], static_cast<uint16_t>(p.size() - 40));
  p[6] = 0;  // hop-by-hop
  p[8] = 0x20;
  p[39] = 1;
  p[24] = 0x20;
  p[55] = 2;
  p[40] = 17;  // then UDP
  p[41] = 0;   // 8 octets
  base::store_be16(&p[48], 40000);
  base::store_be16(&p[50], 123);
  base::store_be16(&p[52], 56);
  Decoded d = decode(kLinkIpv6, p);
  ASSERT_EQ(d.kind, Frame::kUdp);
  EXPECT_EQ(d.family, base::Family::kV6);
  EXPECT_EQ(d.destination_port, 123);
  EXPECT_EQ(d.payload.size(), 48u);
  p[40] = 44;  // a fragment header after hop-by-hop
  EXPECT_EQ(decode(kLinkIpv6, p).kind, Frame::kFragment);
}

TEST(AnalyzeAnalysis, ManyClientsAndThresholds) {
  Analysis a({});
  const int n = 200000;  // past the first table size, so the table grows several times
  for (int i = 0; i < n; ++i) {
    const auto ip = ipv4_udp(0x0a000000u + static_cast<uint32_t>(i), 0xc0000201, 40000, 123, 48);
    const int times = i < 10 ? 100 : 1;
    for (int k = 0; k < times; ++k) a.add(1000.0 + i * 1e-3, decode(kLinkRaw, ip));
  }
  EXPECT_EQ(a.client_count(), static_cast<size_t>(n));
  EXPECT_EQ(a.totals().requests, static_cast<uint64_t>(n - 10 + 1000));
  const auto clients = a.clients();
  ASSERT_EQ(clients.size(), static_cast<size_t>(n));  // the records in order of first appearance
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(clients[static_cast<size_t>(i)].key.address(), base::IpAddress::v4(0x0a000000u + static_cast<uint32_t>(i)));
    ASSERT_EQ(clients[static_cast<size_t>(i)].requests, i < 10 ? 100u : 1u);
  }
  const auto top = top_talkers(clients, 10);
  ASSERT_EQ(top.size(), 10u);
  for (const auto& t : top) EXPECT_EQ(t.requests, 100u);
  const auto rows = thresholds(clients, {1, 100});
  EXPECT_EQ(rows[0].clients_blocked, 10u);
  EXPECT_EQ(rows[0].requests_cut, 1000u);
  EXPECT_EQ(rows[1].clients_blocked, 0u);
  EXPECT_EQ(default_thresholds(100), (std::vector<uint32_t>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(default_thresholds(101), (std::vector<uint32_t>{1, 2, 5, 10, 20, 50, 100, 200}));
}

TEST(AnalyzeAnalysis, ThresholdsMatchCountingEachClient) {
  Analysis a({});
  uint64_t x = 12345;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const uint32_t client = static_cast<uint32_t>(x >> 40) % 3000;
    const auto ip = (x >> 20) % 4 == 0 ? ipv4_reply(client) : ipv4_udp(client, 0xc0000201, 40000, 123, 48);
    a.add(1000.0 + i, decode(kLinkRaw, ip));
  }
  const std::vector<uint32_t> ns = {10, 1, 5, 5, 7, 1000};  // unsorted, a repeat
  const auto rows = thresholds(a.clients(), ns);
  ASSERT_EQ(rows.size(), ns.size());
  std::vector<uint32_t> sorted = ns;
  std::sort(sorted.begin(), sorted.end());
  for (size_t j = 0; j < rows.size(); ++j) {
    uint64_t at_most = 0, blocked = 0, cut = 0, bytes_cut = 0, total = 0;
    for (const ClientRecord& r : a.clients()) {
      if (r.requests == 0) continue;
      total += r.requests;
      if (r.requests <= sorted[j]) {
        ++at_most;
      } else {
        ++blocked;
        cut += r.requests;
        bytes_cut += r.reply_bytes;
      }
    }
    EXPECT_EQ(rows[j].n, sorted[j]);
    EXPECT_EQ(rows[j].clients_at_most, at_most);
    EXPECT_EQ(rows[j].clients_blocked, blocked);
    EXPECT_EQ(rows[j].requests_cut, cut);
    EXPECT_EQ(rows[j].reply_bytes_cut, bytes_cut);
    EXPECT_DOUBLE_EQ(rows[j].request_share_cut, static_cast<double>(cut) / static_cast<double>(total));
  }
  EXPECT_GT(rows[1].clients_blocked, 0u);  // the data reach past the small thresholds
  EXPECT_GT(rows[1].reply_bytes_cut, 0u);
  EXPECT_EQ(rows.back().clients_blocked, 0u);
}

TEST(AnalyzeAnalysis, PipelineCountsAsAddDoes) {
  // Clients repeating within the pipeline's 32 frames, and the index and records growing
  // between a frame's prepare() and its apply(): the same records, in the same order.
  Analysis one({}), piped({});
  {
    Analysis::Pipeline pipeline(piped);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 300000; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const uint32_t client = i % 7 == 0 ? static_cast<uint32_t>(i % 5) : static_cast<uint32_t>(x % 150000);
      const bool reply = x % 3 == 0;
      const auto ip = reply ? ipv4_reply(client) : ipv4_udp(client, 0xc0000201, 40000, 123, 48);
      const double ts = 1000.0 + i * 0.01;
      one.add(ts, decode(kLinkRaw, ip));
      pipeline.push(ts, decode(kLinkRaw, ip));
    }
  }  // the destructor flushes
  EXPECT_EQ(piped.totals().requests, one.totals().requests);
  EXPECT_EQ(piped.totals().replies, one.totals().replies);
  EXPECT_GT(one.totals().replies, 50000u);
  ASSERT_EQ(piped.client_count(), one.client_count());
  EXPECT_GT(one.client_count(), 50000u);  // past the first record array and index
  for (size_t i = 0; i < one.client_count(); ++i) {
    const ClientRecord &a = one.clients()[i], &b = piped.clients()[i];
    ASSERT_EQ(a.key, b.key);
    ASSERT_EQ(a.requests, b.requests);
    ASSERT_EQ(a.replies, b.replies);
    ASSERT_EQ(a.request_bytes, b.request_bytes);
    ASSERT_EQ(a.reply_bytes, b.reply_bytes);
    ASSERT_EQ(a.last_ms, b.last_ms);
    ASSERT_EQ(a.gaps, b.gaps);
  }
}

TEST(AnalyzeAnalysis, PollIntervalsByMedianGap) {
  EXPECT_EQ(gap_bin(0.2), 0);
  EXPECT_EQ(gap_bin(1.0), 0);
  EXPECT_EQ(gap_bin(2.0), 1);
  EXPECT_EQ(gap_bin(64.0), 6);
  EXPECT_EQ(gap_bin(60.0), 6);   // jitter either side of 64 s stays in its bin
  EXPECT_EQ(gap_bin(70.0), 6);
  EXPECT_EQ(gap_bin(1024.0), 10);
  EXPECT_EQ(gap_bin(1e9), kGapBins - 1);
  // The edges, 2^(k+0.5) s in ms, belong to the bin above.
  EXPECT_EQ(gap_bin_ms(0), 0);
  EXPECT_EQ(gap_bin_ms(1413), 0);
  EXPECT_EQ(gap_bin_ms(1414), 1);
  EXPECT_EQ(gap_bin_ms(90509), 6);
  EXPECT_EQ(gap_bin_ms(90510), 7);
  EXPECT_EQ(gap_bin_ms(23170474), kGapBins - 2);
  EXPECT_EQ(gap_bin_ms(23170475), kGapBins - 1);
  Analysis a({});
  const auto ip = [](uint32_t src) { return ipv4_udp(src, 0xc0000201, 40000, 123, 48); };
  // Client 1: every 64 s, 10 times; client 2: every 2 s then one 1024 s pause (median 2 s);
  // client 3: once.
  for (int i = 0; i < 10; ++i) a.add(1000.0 + 64.0 * i, decode(kLinkRaw, ip(1)));
  for (int i = 0; i < 5; ++i) a.add(1000.0 + 2.0 * i, decode(kLinkRaw, ip(2)));
  a.add(1000.0 + 8 + 1024, decode(kLinkRaw, ip(2)));
  a.add(1000.0, decode(kLinkRaw, ip(3)));
  const auto clients = a.clients();
  const auto rows = intervals(clients);
  EXPECT_EQ(rows[6].clients, 1u);
  EXPECT_EQ(rows[6].requests, 10u);
  EXPECT_EQ(rows[1].clients, 1u);
  uint64_t total = 0;
  const auto fast = fast_pollers(clients, 64, 10, total);
  ASSERT_EQ(total, 1u);
  EXPECT_EQ(fast[0].address.to_string(), "0.0.0.2");
  EXPECT_EQ(fast[0].bin, 1);
}

TEST(AnalyzeAnalysis, FingerprintsFromHeaderFields) {
  const auto packet = [](uint8_t li, uint8_t vn, uint8_t mode, uint8_t stratum, int8_t precision, bool fields) {
    std::vector<uint8_t> p(48, 0);
    p[0] = static_cast<uint8_t>(li << 6 | vn << 3 | mode);
    p[1] = stratum;
    p[3] = static_cast<uint8_t>(precision);
    if (fields) p[11] = 0x20;  // some root dispersion
    p[47] = 1;                 // a transmit timestamp
    return p;
  };
  // As captured from chronyd 4.3 and NTPsec 1.2.2's ntpd, and from ntpdig.
  EXPECT_EQ(fingerprint(packet(0, 4, 3, 0, 32, false)), ClientClass::kMinimal);
  EXPECT_EQ(fingerprint(packet(3, 4, 3, 0, 0, false)), ClientClass::kSntpUnsync);
  EXPECT_EQ(fingerprint(packet(0, 4, 3, 0, 0, false)), ClientClass::kSntp);
  EXPECT_EQ(fingerprint(packet(0, 4, 3, 3, -23, true)), ClientClass::kFullNtp);
  EXPECT_EQ(fingerprint(packet(0, 3, 3, 0, 0, false)), ClientClass::kNtpV3);
  EXPECT_EQ(fingerprint(packet(0, 1, 0, 0, 0, false)), ClientClass::kLegacy);
  EXPECT_EQ(fingerprint(packet(0, 4, 1, 2, -20, true)), ClientClass::kSymmetric);
  EXPECT_EQ(fingerprint(packet(0, 4, 3, 0, -6, false)), ClientClass::kUnknown);
  EXPECT_EQ(fingerprint(std::vector<uint8_t>(20, 0)), ClientClass::kUnknown);
  for (int k = 0; k < kClientClasses; ++k) {
    EXPECT_STRNE(class_name(static_cast<ClientClass>(k)), "?");
    EXPECT_STRNE(class_explanation(static_cast<ClientClass>(k)), "");
  }
}

}  // namespace
}  // namespace strata::analyze
