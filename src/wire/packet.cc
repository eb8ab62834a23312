// NTP packet codec (see packet.h). Checks follow protocols.md sections 1.3-1.7.
#include "wire/packet.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"

namespace strata::wire {

using base::load_be16;
using base::load_be32;
using base::load_be64;
using base::store_be32;
using base::store_be64;

namespace {

// NTS Authenticator and Encrypted Extension Fields (RFC 8915 section 5.6).
constexpr uint16_t kNtsAuthenticatorType = 0x0404;
// Largest datagram length we describe in the 16-bit `length` field.
constexpr size_t kMaxLength = 0xFFFF;

uint8_t li_vn_mode(Leap leap, uint8_t version, Mode mode) {
  return static_cast<uint8_t>((static_cast<uint8_t>(leap) & 3) << 6 | (version & 7) << 3 |
                              (static_cast<uint8_t>(mode) & 7));
}

void set_mac(Request& r, std::span<const uint8_t> d, size_t pos, Trailer kind) {
  r.trailer = kind;
  r.mac_offset = static_cast<uint16_t>(pos);
  r.mac_length = static_cast<uint16_t>(d.size() - pos);
  r.key_id = load_be32(d.data() + pos);
}

// NTPv4: walk extension fields while more than a MAC's worth remains (RFC 7822), then the
// remainder must be empty, a crypto-NAK or a MAC.
Verdict classify_v4_trailer(Request& r, std::span<const uint8_t> d) {
  size_t pos = kHeaderSize;
  size_t last_field = 0;
  unsigned fields = 0;
  while (d.size() - pos > kMacLong) {
    const uint16_t type = load_be16(d.data() + pos);
    const size_t length = load_be16(d.data() + pos + 2);
    if (length < kMinExtensionField || length % 4 != 0 || length > d.size() - pos)
      return Verdict::kBadTrailer;
    if (type == kNtsAuthenticatorType) r.nts = true;
    ++fields;
    last_field = length;
    pos += length;
  }
  r.extension_fields = static_cast<uint8_t>(std::min(fields, 255u));
  const size_t rest = d.size() - pos;
  if (rest == 0) {
    // Without a MAC the last field must be long enough not to be mistaken for one.
    if (fields > 0 && last_field < kMinLastExtensionField) return Verdict::kBadTrailer;
    return Verdict::kOk;
  }
  if (rest == kCryptoNakSize) {
    set_mac(r, d, pos, Trailer::kCryptoNak);
    return Verdict::kOk;
  }
  if (rest == kMacShort || rest == kMacLong) {
    set_mac(r, d, pos, Trailer::kMac);
    return Verdict::kOk;
  }
  return Verdict::kBadTrailer;
}

// NTPv1-3 carry no extension fields: only a MAC (or NAK), NTPv3's MS-SNTP authenticator or
// NTPv2's old 6-octet authenticator (ignored, as NTPsec does).
Verdict classify_old_trailer(Request& r, std::span<const uint8_t> d) {
  const size_t rest = d.size() - kHeaderSize;
  if (rest == 0) return Verdict::kOk;
  if (rest == kOldAuthenticator && r.version == 2) return Verdict::kOk;
  if (rest == kMsSntpTrailer && r.version == 3) {
    set_mac(r, d, kHeaderSize, Trailer::kMsSntp);
    return Verdict::kOk;
  }
  if (r.version >= 3 && rest == kCryptoNakSize) {
    set_mac(r, d, kHeaderSize, Trailer::kCryptoNak);
    return Verdict::kOk;
  }
  if (rest == kMacShort || rest == kMacLong) {
    set_mac(r, d, kHeaderSize, Trailer::kMac);
    return Verdict::kOk;
  }
  return Verdict::kBadTrailer;
}

}  // namespace

Header decode_header(std::span<const uint8_t> b) {
  Header h;
  h.leap = static_cast<Leap>(b[0] >> 6);
  h.version = version_of(b[0]);
  h.mode = mode_of(b[0]);
  h.stratum = b[1];
  h.poll = static_cast<int8_t>(b[2]);
  h.precision = static_cast<int8_t>(b[3]);
  h.root_delay = NtpShort{load_be32(&b[4])};
  h.root_dispersion = NtpShort{load_be32(&b[8])};
  h.reference_id = load_be32(&b[12]);
  h.reference = NtpTimestamp{load_be64(&b[16])};
  h.origin = NtpTimestamp{load_be64(&b[24])};
  h.receive = NtpTimestamp{load_be64(&b[32])};
  h.transmit = NtpTimestamp{load_be64(&b[40])};
  return h;
}

void encode_header(const Header& h, std::span<uint8_t> out) {
  out[0] = li_vn_mode(h.leap, h.version, h.mode);
  out[1] = h.stratum;
  out[2] = static_cast<uint8_t>(h.poll);
  out[3] = static_cast<uint8_t>(h.precision);
  store_be32(&out[4], h.root_delay.raw);
  store_be32(&out[8], h.root_dispersion.raw);
  store_be32(&out[12], h.reference_id);
  store_be64(&out[16], h.reference.raw);
  store_be64(&out[24], h.origin.raw);
  store_be64(&out[32], h.receive.raw);
  store_be64(&out[40], h.transmit.raw);
}

Request parse_request(std::span<const uint8_t> d) {
  Request r;
  r.length = static_cast<uint16_t>(std::min(d.size(), kMaxLength));
  if (d.empty()) return r;  // kTooShort
  r.version = version_of(d[0]);
  r.mode = mode_of(d[0]);
  if (r.version < kMinVersion || r.version > kMaxVersion) {
    r.verdict = Verdict::kBadVersion;
    return r;
  }
  if (r.mode == Mode::kReserved) {
    if (r.version != 1) {
      r.verdict = Verdict::kBadMode0;
      return r;
    }
    r.v1_mode0 = true;
  }
  // Mode 6 and 7 have formats of their own; their parsers take it from here.
  if (r.mode == Mode::kControl || r.mode == Mode::kPrivate) {
    r.verdict = Verdict::kOk;
    return r;
  }
  if (d.size() < kHeaderSize) {
    r.verdict = Verdict::kTooShort;
    return r;
  }
  if (d.size() > kMaxLength) {  // no UDP payload is this long; only a fuzzer gets here
    r.verdict = Verdict::kBadTrailer;
    return r;
  }
  r.header = decode_header(d);
  r.verdict = r.version == 4 ? classify_v4_trailer(r, d) : classify_old_trailer(r, d);
  return r;
}

size_t build_reply(const Request& request, const ServerInfo& server, NtpTimestamp receive,
                   int8_t poll, std::span<uint8_t> out) {
  if (out.size() < kHeaderSize) return 0;
  Header h;
  h.leap = server.leap;
  h.version = request.version;
  h.mode = request.mode == Mode::kSymmetricActive ? Mode::kSymmetricPassive : Mode::kServer;
  h.stratum = server.stratum;
  h.poll = poll;
  h.precision = server.precision;
  h.root_delay = server.root_delay;
  h.root_dispersion = server.root_dispersion;
  h.reference_id = server.reference_id;
  h.reference = server.reference;
  h.origin = request.header.transmit;
  h.receive = receive;
  h.transmit = NtpTimestamp{};
  encode_header(h, out);
  return kHeaderSize;
}

void stamp_transmit(std::span<uint8_t> reply, NtpTimestamp transmit) {
  store_be64(&reply[40], transmit.raw);
}

size_t build_kod(const Request& request, uint32_t kiss, int8_t poll, std::span<uint8_t> out) {
  if (out.size() < kHeaderSize) return 0;
  Header h = request.header;
  h.leap = Leap::kUnsynchronised;
  h.version = request.version;
  h.mode = request.mode == Mode::kSymmetricActive ? Mode::kSymmetricPassive : Mode::kServer;
  h.stratum = 0;
  h.poll = poll;
  h.reference_id = kiss;
  h.origin = request.header.transmit;
  h.receive = request.header.transmit;
  h.transmit = request.header.transmit;
  encode_header(h, out);
  return kHeaderSize;
}

size_t build_client_request(uint8_t version, int8_t poll, NtpTimestamp transmit,
                            std::span<uint8_t> out) {
  if (out.size() < kHeaderSize) return 0;
  Header h;
  h.leap = Leap::kNone;
  h.version = version;
  h.mode = Mode::kClient;
  h.poll = poll;
  h.precision = 0;
  h.transmit = transmit;
  encode_header(h, out);
  return kHeaderSize;
}

}  // namespace strata::wire
