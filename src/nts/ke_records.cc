// NTS-KE record codec (see ke_records.h).
#include "nts/ke_records.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/bytes.h"

namespace strata::nts {

namespace {

constexpr size_t kHeader = 4;
constexpr uint16_t kCritical = 0x8000;

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void put_record(std::vector<uint8_t>& out, bool critical, uint16_t type, std::span<const uint8_t> body) {
  put16(out, static_cast<uint16_t>((critical ? kCritical : 0) | (type & 0x7FFF)));
  put16(out, static_cast<uint16_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
}

void put_ids(std::vector<uint8_t>& out, bool critical, uint16_t type, const std::vector<uint16_t>& ids) {
  std::vector<uint8_t> body;
  for (const uint16_t id : ids) put16(body, id);
  put_record(out, critical, type, body);
}

void put_server_and_port(std::vector<uint8_t>& out, const std::optional<std::string>& server,
                         const std::optional<uint16_t>& port) {
  if (server) {
    const std::vector<uint8_t> body(server->begin(), server->end());
    put_record(out, true, kServerNegotiation, body);
  }
  if (port) {
    std::vector<uint8_t> body;
    put16(body, *port);
    put_record(out, true, kPortNegotiation, body);
  }
}

const char* record_name(uint16_t type) {
  switch (type) {
    case kEndOfMessage: return "End of Message";
    case kNextProtocol: return "Next Protocol Negotiation";
    case kErrorRecord: return "Error";
    case kWarningRecord: return "Warning";
    case kAeadAlgorithm: return "AEAD Algorithm Negotiation";
    case kNewCookie: return "New Cookie";
    case kServerNegotiation: return "Server Negotiation";
    case kPortNegotiation: return "Port Negotiation";
  }
  return "?";
}

ParseResult failure(KeError error, std::string reason) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error = error;
  r.reason = std::move(reason);
  return r;
}

std::vector<uint16_t> ids_of(std::span<const uint8_t> body) {
  std::vector<uint16_t> ids;
  for (size_t i = 0; i + 1 < body.size(); i += 2) ids.push_back(base::load_be16(&body[i]));
  return ids;
}

}  // namespace

ParseResult parse_request(std::span<const uint8_t> bytes) {
  ParseResult out;
  bool have_protocols = false, have_aeads = false;
  size_t pos = 0;
  for (;;) {
    if (bytes.size() - pos < kHeader) {
      if (bytes.size() > kMaxRequest)
        return failure(KeError::kBadRequest, fmt::format("request longer than {} octets", kMaxRequest));
      return out;  // kNeedMore
    }
    const uint16_t word = base::load_be16(&bytes[pos]);
    const bool critical = (word & kCritical) != 0;
    const uint16_t type = word & 0x7FFF;
    const size_t length = base::load_be16(&bytes[pos + 2]);
    if (pos + kHeader + length > kMaxRequest)
      return failure(KeError::kBadRequest, fmt::format("request longer than {} octets", kMaxRequest));
    if (bytes.size() - pos - kHeader < length) return out;  // kNeedMore
    const std::span<const uint8_t> body = bytes.subspan(pos + kHeader, length);
    pos += kHeader + length;
    const auto must_be_critical = [&]() -> std::optional<ParseResult> {
      if (!critical)
        return failure(KeError::kBadRequest, fmt::format("{} record without its critical bit", record_name(type)));
      return std::nullopt;
    };
    switch (type) {
      case kEndOfMessage: {
        if (auto f = must_be_critical()) return *f;
        if (length != 0) return failure(KeError::kBadRequest, "End of Message with a body");
        if (pos != bytes.size()) return failure(KeError::kBadRequest, "data after End of Message");
        if (!have_protocols) return failure(KeError::kBadRequest, "no Next Protocol Negotiation record");
        out.status = ParseStatus::kComplete;
        out.length = pos;
        return out;
      }
      case kNextProtocol:
        if (auto f = must_be_critical()) return *f;
        if (have_protocols) return failure(KeError::kBadRequest, "two Next Protocol Negotiation records");
        if (length % 2 != 0) return failure(KeError::kBadRequest, "Next Protocol Negotiation of odd length");
        have_protocols = true;
        out.request.protocols = ids_of(body);
        break;
      case kErrorRecord:
      case kWarningRecord:
      case kNewCookie:
        return failure(KeError::kBadRequest, fmt::format("{} record from a client", record_name(type)));
      case kAeadAlgorithm:
        if (have_aeads) return failure(KeError::kBadRequest, "two AEAD Algorithm Negotiation records");
        if (length % 2 != 0) return failure(KeError::kBadRequest, "AEAD Algorithm Negotiation of odd length");
        have_aeads = true;
        out.request.aeads = ids_of(body);
        break;
      case kServerNegotiation: {
        if (out.request.server) return failure(KeError::kBadRequest, "two Server Negotiation records");
        if (length == 0 || length > kMaxServerName)
          return failure(KeError::kBadRequest, fmt::format("Server Negotiation of {} octets", length));
        if (!std::all_of(body.begin(), body.end(), [](uint8_t c) { return c > 0x20 && c < 0x7F; }))
          return failure(KeError::kBadRequest, "Server Negotiation that is not printable ASCII");
        out.request.server = std::string(body.begin(), body.end());
        break;
      }
      case kPortNegotiation:
        if (out.request.port) return failure(KeError::kBadRequest, "two Port Negotiation records");
        if (length != 2) return failure(KeError::kBadRequest, fmt::format("Port Negotiation of {} octets", length));
        out.request.port = base::load_be16(body.data());
        break;
      default:
        if (critical)
          return failure(KeError::kUnrecognizedCritical, fmt::format("unrecognised critical record {}", type));
        break;  // not critical: ignored
    }
  }
}

Negotiated negotiate(const KeRequest& request) {
  Negotiated n;
  n.ntp_v4 = std::find(request.protocols.begin(), request.protocols.end(), kProtocolNtpV4) !=
             request.protocols.end();
  if (n.ntp_v4 && std::find(request.aeads.begin(), request.aeads.end(), kAeadAesSivCmac256) !=
                      request.aeads.end())
    n.aead = kAeadAesSivCmac256;
  return n;
}

std::vector<uint8_t> encode_response(const KeResponse& r) {
  std::vector<uint8_t> out;
  put_ids(out, true, kNextProtocol,
          r.negotiated.ntp_v4 ? std::vector<uint16_t>{kProtocolNtpV4} : std::vector<uint16_t>{});
  put_ids(out, true, kAeadAlgorithm,
          r.negotiated.aead ? std::vector<uint16_t>{*r.negotiated.aead} : std::vector<uint16_t>{});
  if (r.negotiated.usable()) {
    for (const auto& cookie : r.cookies) put_record(out, false, kNewCookie, cookie);
    put_server_and_port(out, r.server, r.port);
  }
  put_record(out, true, kEndOfMessage, {});
  return out;
}

std::vector<uint8_t> encode_error(KeError error) {
  std::vector<uint8_t> out, body;
  put16(body, static_cast<uint16_t>(error));
  put_record(out, true, kErrorRecord, body);
  put_record(out, true, kEndOfMessage, {});
  return out;
}

std::vector<uint8_t> encode_request(const KeRequest& r) {
  std::vector<uint8_t> out;
  put_ids(out, true, kNextProtocol, r.protocols);
  if (!r.aeads.empty()) put_ids(out, true, kAeadAlgorithm, r.aeads);
  put_server_and_port(out, r.server, r.port);
  put_record(out, true, kEndOfMessage, {});
  return out;
}

KeResponseParsed parse_response(std::span<const uint8_t> bytes) {
  KeResponseParsed out;
  const auto fail = [&](std::string reason) {
    out.status = ParseStatus::kError;
    out.reason = std::move(reason);
    return out;
  };
  size_t pos = 0;
  for (;;) {
    if (bytes.size() - pos < kHeader) {
      if (bytes.size() > 65536) return fail("response longer than 65536 octets");
      return out;  // kNeedMore
    }
    const uint16_t word = base::load_be16(&bytes[pos]);
    const bool critical = (word & kCritical) != 0;
    const uint16_t type = word & 0x7FFF;
    const size_t length = base::load_be16(&bytes[pos + 2]);
    if (bytes.size() - pos - kHeader < length) return out;  // kNeedMore
    const std::span<const uint8_t> body = bytes.subspan(pos + kHeader, length);
    pos += kHeader + length;
    switch (type) {
      case kEndOfMessage:
        if (out.server_error) return fail(fmt::format("the server answered with error {}", *out.server_error));
        out.status = ParseStatus::kComplete;
        return out;
      case kNextProtocol:
        if (length % 2 != 0) return fail("Next Protocol Negotiation of odd length");
        out.protocols = ids_of(body);
        break;
      case kErrorRecord:
        if (length != 2) return fail("Error record of the wrong length");
        out.server_error = base::load_be16(body.data());
        break;
      case kWarningRecord:
        if (length != 2) return fail("Warning record of the wrong length");
        out.warning = base::load_be16(body.data());
        break;
      case kAeadAlgorithm:
        if (length % 2 != 0) return fail("AEAD Algorithm Negotiation of odd length");
        out.aeads = ids_of(body);
        break;
      case kNewCookie:
        out.cookies.emplace_back(body.begin(), body.end());
        break;
      case kServerNegotiation:
        out.server = std::string(body.begin(), body.end());
        break;
      case kPortNegotiation:
        if (length != 2) return fail("Port Negotiation of the wrong length");
        out.port = base::load_be16(body.data());
        break;
      default:
        if (critical) return fail(fmt::format("unrecognised critical record {}", type));
        break;
    }
  }
}

}  // namespace strata::nts
