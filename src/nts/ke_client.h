// The client's side of NTS-KE, for `strata query --nts`, `strata load --nts` and the tests:
// one TLS 1.3 exchange (ALPN ntske/1, the certificate checked against the system's CAs or a
// given CA file and the host name), the request for NTPv4 and AEAD 15, the response's
// cookies, server and port, and the C2S/S2C keys from the exporter. Blocking, with a timeout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nts/cookies.h"

namespace strata::nts {

struct KeClientOptions {
  std::string host;           // name or address to connect to
  uint16_t port = 4460;
  std::string ca_file;        // "": the system's trusted CAs
  std::string verify_name;    // the name the certificate must carry ("": host)
  double timeout_s = 5;
  // For tests of the server's refusals: no ALPN, or TLS 1.2 only.
  bool no_alpn = false;
  bool tls12 = false;
};

struct KeClientResult {
  std::string error;  // "": success
  std::optional<uint16_t> server_error;  // the server's Error record, if it sent one
  uint16_t aead = 0;
  std::vector<std::vector<uint8_t>> cookies;
  std::string ntp_server;  // from Server Negotiation, else the host connected to
  uint16_t ntp_port = 123;  // from Port Negotiation, else 123
  SessionKeys keys;
  std::string tls;         // protocol and cipher, e.g. "TLS1.3 AES-256-GCM"
  std::string subject;     // the server certificate's subject DN
  int64_t expires_unix = 0;
  double seconds = 0;      // connect to the last octet of the response
};

KeClientResult ke_exchange(const KeClientOptions& options);

}  // namespace strata::nts
