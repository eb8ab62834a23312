// NTS-KE records (RFC 8915 section 4): the request a client sends over TLS and the response
// the server writes back, as bytes. Pure and free of I/O (the KE threads feed it what TLS
// delivers); strict where the RFC says MUST, fuzzed (fuzz/fuzz_nts_ke.cc).
//
// A record: C (critical, 1 bit) | type (15 bits) | body length (16 bits, the body only) |
// body. A request ends with End of Message, holds exactly one Next Protocol Negotiation, and
// never Error, Warning or New Cookie (a client must not send them); an unknown record with
// the critical bit is answered with error 0, one without it is ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace strata::nts {

enum RecordType : uint16_t {
  kEndOfMessage = 0,
  kNextProtocol = 1,
  kErrorRecord = 2,
  kWarningRecord = 3,
  kAeadAlgorithm = 4,
  kNewCookie = 5,
  kServerNegotiation = 6,
  kPortNegotiation = 7,
};

inline constexpr uint16_t kProtocolNtpV4 = 0;
// The one AEAD the RFC makes mandatory, and the only one Debian 12's nettle provides.
inline constexpr uint16_t kAeadAesSivCmac256 = 15;

// Error record codes.
enum class KeError : uint16_t {
  kUnrecognizedCritical = 0,
  kBadRequest = 1,
  kInternal = 2,
};

// Servers must accept requests of at least 1024 octets; a larger one than this is refused
// (a client has no reason to send more: a few records of a few octets each).
inline constexpr size_t kMaxRequest = 16384;
// Server Negotiation bodies longer than this are refused (a host name is at most 253).
inline constexpr size_t kMaxServerName = 255;

struct KeRequest {
  std::vector<uint16_t> protocols;     // Next Protocol IDs, in the client's order
  std::vector<uint16_t> aeads;         // AEAD IDs, in the client's order of preference
  std::optional<std::string> server;   // the client's Server Negotiation, if any
  std::optional<uint16_t> port;        // the client's Port Negotiation, if any
  friend bool operator==(const KeRequest&, const KeRequest&) = default;
};

enum class ParseStatus : uint8_t {
  kNeedMore,  // a valid beginning: wait for more bytes
  kComplete,  // End of Message seen: `request` holds it, `length` octets were used
  kError,     // answer with `error` and close; `reason` says why (for the log, counters)
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  KeError error = KeError::kBadRequest;
  std::string reason;
  size_t length = 0;
  KeRequest request;
};

// Parses the bytes received so far on one connection (call again with more on kNeedMore).
ParseResult parse_request(std::span<const uint8_t> bytes);

// What the server agreed to: NTPv4 if the client asked for it, AEAD 15 if it offered it.
struct Negotiated {
  bool ntp_v4 = false;
  std::optional<uint16_t> aead;
  bool usable() const { return ntp_v4 && aead.has_value(); }  // cookies are sent only then
};
Negotiated negotiate(const KeRequest& request);

struct KeResponse {
  Negotiated negotiated;
  std::vector<std::vector<uint8_t>> cookies;  // sent only when negotiated.usable()
  std::optional<std::string> server;          // Server Negotiation, if configured
  std::optional<uint16_t> port;               // Port Negotiation, if configured
};

// The response records: Next Protocol (0, or empty when NTPv4 was not asked for), AEAD (15,
// or empty), the cookies, server and port when set, End of Message.
std::vector<uint8_t> encode_response(const KeResponse& response);
// An Error record and End of Message.
std::vector<uint8_t> encode_error(KeError error);
// A client's request (for `strata query --nts`, the tests and the fuzzer's round trip).
std::vector<uint8_t> encode_request(const KeRequest& request);

// The client's side: a server's response as `strata query --nts` reads it. kError when the
// server sent an Error record (`server_error`) or the records break the RFC (`reason`).
struct KeResponseParsed {
  ParseStatus status = ParseStatus::kNeedMore;
  std::string reason;
  std::optional<uint16_t> server_error;   // the Error record's code
  std::optional<uint16_t> warning;
  std::vector<uint16_t> protocols;
  std::vector<uint16_t> aeads;
  std::vector<std::vector<uint8_t>> cookies;
  std::optional<std::string> server;
  std::optional<uint16_t> port;
};
KeResponseParsed parse_response(std::span<const uint8_t> bytes);

}  // namespace strata::nts
