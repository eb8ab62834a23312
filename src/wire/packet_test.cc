// Unit tests of the NTP codec: every version and mode, every trailer shape (extension
// fields, MACs, crypto-NAK, MS-SNTP), replies and KoD.
#include "wire/packet.h"

#include <gtest/gtest.h>

#include <vector>

#include "base/bytes.h"

namespace strata::wire {
namespace {

std::vector<uint8_t> packet(uint8_t version, uint8_t mode, size_t length = kHeaderSize) {
  std::vector<uint8_t> p(length, 0);
  if (!p.empty()) p[0] = static_cast<uint8_t>(version << 3 | mode);
  if (length >= kHeaderSize) base::store_be64(&p[40], 0x1122334455667788ULL);
  return p;
}

// Appends an extension field of `length` octets (type, length, zero value).
void add_field(std::vector<uint8_t>& p, uint16_t type, uint16_t length) {
  const size_t at = p.size();
  p.resize(at + length, 0);
  base::store_be16(&p[at], type);
  base::store_be16(&p[at + 2], length);
}

void add_mac(std::vector<uint8_t>& p, uint32_t key, size_t digest) {
  const size_t at = p.size();
  p.resize(at + 4 + digest, 0xAB);
  base::store_be32(&p[at], key);
}

TEST(Header, EncodeDecodeRoundTrip) {
  Header h;
  h.leap = Leap::kInsert;
  h.version = 3;
  h.mode = Mode::kServer;
  h.stratum = 2;
  h.poll = -6;
  h.precision = -24;
  h.root_delay = NtpShort{0x00010002};
  h.root_dispersion = NtpShort{0x00030004};
  h.reference_id = 0xC0000201;
  h.reference = NtpTimestamp{1};
  h.origin = NtpTimestamp{2};
  h.receive = NtpTimestamp{3};
  h.transmit = NtpTimestamp{0xFFFFFFFFFFFFFFFFULL};
  uint8_t buf[kHeaderSize];
  encode_header(h, buf);
  EXPECT_EQ(buf[0], (1 << 6) | (3 << 3) | 4);
  EXPECT_EQ(decode_header(buf), h);
}

TEST(ParseRequest, EveryVersionAndModeAt48Octets) {
  for (uint8_t v = 0; v < 8; ++v) {
    for (uint8_t m = 0; m < 8; ++m) {
      const auto p = packet(v, m);
      const Request r = parse_request(p);
      SCOPED_TRACE(testing::Message() << "version " << int(v) << " mode " << int(m));
      EXPECT_EQ(r.version, v);
      EXPECT_EQ(static_cast<uint8_t>(r.mode), m);
      if (v < 1 || v > 4) {
        EXPECT_EQ(r.verdict, Verdict::kBadVersion);
      } else if (m == 0 && v != 1) {
        EXPECT_EQ(r.verdict, Verdict::kBadMode0);
      } else {
        EXPECT_EQ(r.verdict, Verdict::kOk);
        EXPECT_EQ(r.v1_mode0, m == 0);
      }
    }
  }
}

TEST(ParseRequest, ShortPackets) {
  EXPECT_EQ(parse_request({}).verdict, Verdict::kTooShort);
  for (size_t len : {1u, 12u, 47u}) {
    EXPECT_EQ(parse_request(packet(4, 3, len)).verdict, Verdict::kTooShort) << len;
  }
  // Mode 6 is not held to 48 octets here (its own parser checks it).
  EXPECT_EQ(parse_request(packet(2, 6, 12)).verdict, Verdict::kOk);
}

TEST(ParseRequest, DecodesHeader) {
  auto p = packet(4, 3);
  p[2] = 6;            // poll
  p[3] = 0xEC;         // precision -20
  const Request r = parse_request(p);
  ASSERT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.header.poll, 6);
  EXPECT_EQ(r.header.precision, -20);
  EXPECT_EQ(r.header.transmit.raw, 0x1122334455667788ULL);
  EXPECT_EQ(r.trailer, Trailer::kNone);
  EXPECT_EQ(r.length, 48);
}

TEST(ParseRequest, MacShapes) {
  for (uint8_t v : {3, 4}) {
    auto nak = packet(v, 3);
    add_mac(nak, 0, 0);
    Request r = parse_request(nak);
    EXPECT_EQ(r.verdict, Verdict::kOk);
    EXPECT_EQ(r.trailer, Trailer::kCryptoNak);
    for (size_t digest : {16u, 20u}) {
      auto p = packet(v, 3);
      add_mac(p, 42, digest);
      r = parse_request(p);
      EXPECT_EQ(r.verdict, Verdict::kOk);
      EXPECT_EQ(r.trailer, Trailer::kMac);
      EXPECT_EQ(r.key_id, 42u);
      EXPECT_EQ(r.mac_offset, 48);
      EXPECT_EQ(r.mac_length, 4 + digest);
    }
  }
}

TEST(ParseRequest, OldVersionTrailers) {
  // NTPv2's 6-octet authenticator is ignored; NTPv1/2 have no 4-octet NAK.
  EXPECT_EQ(parse_request(packet(2, 3, 54)).verdict, Verdict::kOk);
  EXPECT_EQ(parse_request(packet(2, 3, 52)).verdict, Verdict::kBadTrailer);
  EXPECT_EQ(parse_request(packet(1, 3, 54)).verdict, Verdict::kBadTrailer);
  // MS-SNTP: NTPv3 with 72 octets.
  const Request ms = parse_request(packet(3, 3, 48 + 72));
  EXPECT_EQ(ms.verdict, Verdict::kOk);
  EXPECT_EQ(ms.trailer, Trailer::kMsSntp);
  // NTPv3 has no extension fields: a field-shaped trailer is bad.
  auto v3 = packet(3, 3);
  add_field(v3, 0x0104, 32);
  EXPECT_EQ(parse_request(v3).verdict, Verdict::kBadTrailer);
  for (size_t extra : {1u, 2u, 3u, 8u, 12u, 16u, 28u, 100u})
    EXPECT_EQ(parse_request(packet(3, 3, 48 + extra)).verdict, Verdict::kBadTrailer) << extra;
}

TEST(ParseRequest, ExtensionFields) {
  // One field of 28 octets or more without a MAC: fine.
  auto one = packet(4, 3);
  add_field(one, 0x0104, 28);
  Request r = parse_request(one);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.extension_fields, 1);
  EXPECT_EQ(r.trailer, Trailer::kNone);
  // Two 16-octet fields and no MAC: the last field is too short to be told from a MAC.
  auto short_last = packet(4, 3);
  add_field(short_last, 0x0104, 16);
  add_field(short_last, 0x0204, 16);
  EXPECT_EQ(parse_request(short_last).verdict, Verdict::kBadTrailer);
  // 16-octet field followed by a MAC: fine.
  auto with_mac = packet(4, 3);
  add_field(with_mac, 0x0104, 16);
  add_mac(with_mac, 7, 16);
  r = parse_request(with_mac);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.trailer, Trailer::kMac);
  EXPECT_EQ(r.mac_offset, 64);
  // Several fields, the last long enough.
  auto many = packet(4, 3);
  add_field(many, 0x0104, 16);
  add_field(many, 0x0204, 104);
  add_field(many, 0x0304, 104);
  r = parse_request(many);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.extension_fields, 3);
  // NTS authenticator is noticed.
  auto nts = packet(4, 3);
  add_field(nts, 0x0104, 36);
  add_field(nts, 0x0404, 40);
  EXPECT_TRUE(parse_request(nts).nts);
}

TEST(ParseRequest, MalformedExtensionFields) {
  auto odd = packet(4, 3);
  add_field(odd, 0x0104, 32);
  base::store_be16(&odd[50], 30);  // not a multiple of 4
  EXPECT_EQ(parse_request(odd).verdict, Verdict::kBadTrailer);
  auto tiny = packet(4, 3);
  add_field(tiny, 0x0104, 32);
  base::store_be16(&tiny[50], 12);  // below the 16-octet minimum
  EXPECT_EQ(parse_request(tiny).verdict, Verdict::kBadTrailer);
  auto overrun = packet(4, 3);
  add_field(overrun, 0x0104, 32);
  base::store_be16(&overrun[50], 64);  // longer than what is left
  EXPECT_EQ(parse_request(overrun).verdict, Verdict::kBadTrailer);
  auto zero = packet(4, 3);
  add_field(zero, 0x0104, 32);
  base::store_be16(&zero[50], 0);  // would loop forever if accepted
  EXPECT_EQ(parse_request(zero).verdict, Verdict::kBadTrailer);
  // Leftovers that fit no MAC size.
  for (size_t extra : {1u, 2u, 8u, 12u, 16u, 21u, 22u, 23u})
    EXPECT_EQ(parse_request(packet(4, 3, 48 + extra)).verdict, Verdict::kBadTrailer) << extra;
}

TEST(BuildReply, FollowsRfc5905ServerRules) {
  auto p = packet(3, 3);
  p[2] = 10;  // poll
  const Request req = parse_request(p);
  ServerInfo s;
  s.leap = Leap::kDelete;
  s.stratum = 2;
  s.precision = -23;
  s.root_delay = NtpShort{100};
  s.root_dispersion = NtpShort{200};
  s.reference_id = 0xC0000201;
  s.reference = NtpTimestamp{0xAAAA};
  uint8_t out[64];
  ASSERT_EQ(build_reply(req, s, NtpTimestamp{0x5555}, req.header.poll, out), kHeaderSize);
  stamp_transmit(out, NtpTimestamp{0x6666});
  const Header h = decode_header(out);
  EXPECT_EQ(h.leap, Leap::kDelete);
  EXPECT_EQ(h.version, 3);  // copied from the request
  EXPECT_EQ(h.mode, Mode::kServer);
  EXPECT_EQ(h.stratum, 2);
  EXPECT_EQ(h.poll, 10);
  EXPECT_EQ(h.precision, -23);
  EXPECT_EQ(h.root_delay.raw, 100u);
  EXPECT_EQ(h.root_dispersion.raw, 200u);
  EXPECT_EQ(h.reference_id, 0xC0000201u);
  EXPECT_EQ(h.reference.raw, 0xAAAAu);
  EXPECT_EQ(h.origin.raw, 0x1122334455667788ULL);  // request's transmit, bit for bit
  EXPECT_EQ(h.receive.raw, 0x5555u);
  EXPECT_EQ(h.transmit.raw, 0x6666u);
}

TEST(BuildReply, SymmetricActiveGetsPassive) {
  const Request req = parse_request(packet(4, 1));
  uint8_t out[48];
  build_reply(req, ServerInfo{}, NtpTimestamp{}, 0, out);
  EXPECT_EQ(decode_header(out).mode, Mode::kSymmetricPassive);
  EXPECT_EQ(build_reply(req, ServerInfo{}, NtpTimestamp{}, 0, std::span<uint8_t>(out, 47)), 0u);
}

TEST(BuildReply, V1Mode0GetsMode4WithVersion1) {
  const Request req = parse_request(packet(1, 0));
  ASSERT_TRUE(req.v1_mode0);
  uint8_t out[48];
  build_reply(req, ServerInfo{}, NtpTimestamp{}, 0, out);
  const Header h = decode_header(out);
  EXPECT_EQ(h.mode, Mode::kServer);
  EXPECT_EQ(h.version, 1);
}

TEST(BuildKod, NtpdLayoutRevealsNoTime) {
  auto p = packet(4, 3);
  p[2] = 4;                       // poll
  p[3] = 0xE9;                    // precision -23
  base::store_be32(&p[4], 0x11);  // root delay
  base::store_be32(&p[8], 0x22);  // root dispersion
  base::store_be64(&p[16], 0x33); // reference time
  const Request req = parse_request(p);
  uint8_t out[48];
  ASSERT_EQ(build_kod(req, kKissRate, 8, out), kHeaderSize);
  const Header h = decode_header(out);
  EXPECT_EQ(h.leap, Leap::kUnsynchronised);
  EXPECT_EQ(h.version, 4);
  EXPECT_EQ(h.mode, Mode::kServer);
  EXPECT_EQ(h.stratum, 0);
  EXPECT_TRUE(is_kod(h));
  EXPECT_EQ(h.poll, 8);
  EXPECT_EQ(h.precision, -23);
  EXPECT_EQ(h.root_delay.raw, 0x11u);
  EXPECT_EQ(h.root_dispersion.raw, 0x22u);
  EXPECT_EQ(h.reference_id, 0x52415445u);  // "RATE"
  EXPECT_EQ(h.reference.raw, 0x33u);
  EXPECT_EQ(h.origin.raw, 0x1122334455667788ULL);
  EXPECT_EQ(h.receive.raw, 0x1122334455667788ULL);
  EXPECT_EQ(h.transmit.raw, 0x1122334455667788ULL);
}

TEST(BuildClientRequest, IsParsedBack) {
  uint8_t out[48];
  ASSERT_EQ(build_client_request(4, 6, NtpTimestamp{99}, out), kHeaderSize);
  const Request r = parse_request(out);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.mode, Mode::kClient);
  EXPECT_EQ(r.header.poll, 6);
  EXPECT_EQ(r.header.transmit.raw, 99u);
}

}  // namespace
}  // namespace strata::wire
