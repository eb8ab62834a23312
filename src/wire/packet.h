// NTP packet codec (RFC 5905 section 7, RFC 7822): decode and encode the 48-octet header,
// classify a request (version, mode, trailer: extension fields, MAC, crypto-NAK), and build
// server replies and Kiss-o'-Death packets. No syscalls, no clock, no heap: the packet path and
// the fuzzers call it directly, as do the CLI's query and load tools.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/ntp_time.h"

namespace strata::wire {

using base::NtpShort;
using base::NtpTimestamp;

inline constexpr size_t kHeaderSize = 48;  // octets, RFC 5905 figure 8
// Legacy MAC sizes: key id (4) + MD5/AES-CMAC digest (16) or SHA-1 digest (20).
inline constexpr size_t kMacShort = 20;
inline constexpr size_t kMacLong = 24;
inline constexpr size_t kCryptoNakSize = 4;  // key id 0 alone
inline constexpr size_t kMsSntpTrailer = 72;  // MS-SNTP extended authenticator (NTPv3)
inline constexpr size_t kOldAuthenticator = 6;  // NTPv2 old-style authenticator, ignored
inline constexpr size_t kMinExtensionField = 16;  // RFC 7822
inline constexpr size_t kMinLastExtensionField = 28;  // RFC 7822 / erratum 3627, no MAC

enum class Mode : uint8_t {
  kReserved = 0,
  kSymmetricActive = 1,
  kSymmetricPassive = 2,
  kClient = 3,
  kServer = 4,
  kBroadcast = 5,
  kControl = 6,
  kPrivate = 7,
};

enum class Leap : uint8_t { kNone = 0, kInsert = 1, kDelete = 2, kUnsynchronised = 3 };

inline constexpr uint8_t kStratumUnsynchronised = 16;
inline constexpr uint8_t kMinVersion = 1;
inline constexpr uint8_t kMaxVersion = 4;

// The decoded 48-octet header.
struct Header {
  Leap leap = Leap::kNone;
  uint8_t version = 4;
  Mode mode = Mode::kClient;
  uint8_t stratum = 0;
  int8_t poll = 0;
  int8_t precision = 0;
  NtpShort root_delay;
  NtpShort root_dispersion;
  uint32_t reference_id = 0;
  NtpTimestamp reference;
  NtpTimestamp origin;
  NtpTimestamp receive;
  NtpTimestamp transmit;
  friend bool operator==(const Header&, const Header&) = default;
};

// Requires at least kHeaderSize octets.
Header decode_header(std::span<const uint8_t> bytes);
void encode_header(const Header& header, std::span<uint8_t> out);

// What follows the header.
enum class Trailer : uint8_t {
  kNone,           // exactly 48 octets (or only unauthenticated extension fields)
  kCryptoNak,      // 4-octet key id only
  kMac,            // key id + 16 or 20 octet digest
  kMsSntp,         // MS-SNTP extended authenticator (NTPv3, 72 octets)
};

// Outcome of classifying a datagram as an NTP request.
enum class Verdict : uint8_t {
  kOk,
  kTooShort,    // fewer than 48 octets (mode 6 needs only 12; see classify)
  kBadVersion,  // VN outside 1..4
  kBadMode0,    // mode 0 with VN other than 1
  kBadTrailer,  // octets after the header fit no EF/MAC shape
};

struct Request {
  Verdict verdict = Verdict::kTooShort;
  uint8_t version = 0;
  Mode mode = Mode::kReserved;  // as sent
  bool v1_mode0 = false;        // NTPv1 mode 0: served as a client request
  Header header;                // valid when verdict == kOk
  Trailer trailer = Trailer::kNone;
  uint16_t length = 0;
  uint16_t mac_offset = 0;      // where the key id starts, for kCryptoNak/kMac
  uint16_t mac_length = 0;      // key id + digest octets
  uint32_t key_id = 0;
  uint8_t extension_fields = 0; // count, saturating at 255
  bool nts = false;             // carries an NTS authenticator EF (RFC 8915)
};

// Reads version and mode from the first octet (no length check beyond 1 octet).
inline uint8_t version_of(uint8_t first_octet) { return (first_octet >> 3) & 7; }
inline Mode mode_of(uint8_t first_octet) { return static_cast<Mode>(first_octet & 7); }

// Classifies and decodes a request. Checks in this order: length >= 1, version, mode-0 rule,
// length >= 48, trailer shape. Modes other than 0/1/3 are classified too (callers decide).
Request parse_request(std::span<const uint8_t> datagram);

// The server's own fields for a reply.
struct ServerInfo {
  Leap leap = Leap::kUnsynchronised;
  uint8_t stratum = kStratumUnsynchronised;
  int8_t precision = -20;
  NtpShort root_delay;
  NtpShort root_dispersion;
  uint32_t reference_id = 0;
  NtpTimestamp reference;
};

// Builds a 48-octet server reply to `request` (mode 4, or mode 2 for a symmetric-active
// request) with `receive` as T2 and a zero transmit timestamp: stamp it with
// stamp_transmit() as late as possible. `poll` is what to put in the poll field. Returns 48, or
// 0 if `out` is too small.
size_t build_reply(const Request& request, const ServerInfo& server, NtpTimestamp receive,
                   int8_t poll, std::span<uint8_t> out);

// Writes the transmit timestamp of a reply built by build_reply().
void stamp_transmit(std::span<uint8_t> reply, NtpTimestamp transmit);

// Four-character kiss codes (RFC 5905 section 7.4) as big-endian reference ids.
inline constexpr uint32_t kiss_code(const char (&s)[5]) {
  return (uint32_t(uint8_t(s[0])) << 24) | (uint32_t(uint8_t(s[1])) << 16) |
         (uint32_t(uint8_t(s[2])) << 8) | uint32_t(uint8_t(s[3]));
}
inline constexpr uint32_t kKissRate = kiss_code("RATE");
inline constexpr uint32_t kKissDeny = kiss_code("DENY");
inline constexpr uint32_t kKissRstr = kiss_code("RSTR");

// Builds a Kiss-o'-Death in ntpd's layout: LI 3, stratum 0, the kiss code as reference id,
// precision, root delay, root dispersion and reference time copied from the request, and all
// three timestamps set to the request's transmit timestamp, so it reveals no server time and
// needs no transmit stamp. Returns 48, or 0 if `out` is too small.
size_t build_kod(const Request& request, uint32_t kiss, int8_t poll, std::span<uint8_t> out);

// True when a reply header is a KoD: stratum 0 (its reference id holds the kiss code).
inline bool is_kod(const Header& h) { return h.stratum == 0; }

// Builds a 48-octet client request (mode 3) with the given transmit timestamp.
size_t build_client_request(uint8_t version, int8_t poll, NtpTimestamp transmit,
                            std::span<uint8_t> out);

}  // namespace strata::wire
