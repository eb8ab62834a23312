// NTS-KE client (see ke_client.h).
#include "nts/ke_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "nts/ke_records.h"

namespace strata::nts {

namespace {

constexpr char kAlpn[] = "ntske/1";
constexpr char kExporterLabel[] = "EXPORTER-network-time-security";

using Clock = std::chrono::steady_clock;

int connect_with_timeout(const std::string& host, uint16_t port, Clock::time_point deadline, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    error = fmt::format("{}: {}", host, gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      error = fmt::format("connect to {} port {}: {}", host, port, std::strerror(errno));
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    const int ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (::poll(&p, 1, ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
      error = fmt::format("connect to {} port {}: {}", host, port, soerr != 0 ? std::strerror(soerr) : "timed out");
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(list);
  return fd;
}

// Waits for the direction GnuTLS wants; false at the deadline.
bool wait(gnutls_session_t s, int fd, Clock::time_point deadline) {
  pollfd p{fd, static_cast<short>(gnutls_record_get_direction(s) == 1 ? POLLOUT : POLLIN), 0};
  const int ms = static_cast<int>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
  return ::poll(&p, 1, ms) == 1;
}

}  // namespace

KeClientResult ke_exchange(const KeClientOptions& o) {
  KeClientResult r;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::microseconds(static_cast<int64_t>(o.timeout_s * 1e6));
  const int fd = connect_with_timeout(o.host, o.port, deadline, r.error);
  if (fd < 0) return r;
  gnutls_certificate_credentials_t cred = nullptr;
  gnutls_session_t s = nullptr;
  const auto done = [&](std::string error) {
    r.error = std::move(error);
    if (s != nullptr) gnutls_deinit(s);
    if (cred != nullptr) gnutls_certificate_free_credentials(cred);
    ::close(fd);
    return r;
  };
  gnutls_certificate_allocate_credentials(&cred);
  const int trust = o.ca_file.empty() ? gnutls_certificate_set_x509_system_trust(cred)
                                      : gnutls_certificate_set_x509_trust_file(cred, o.ca_file.c_str(), GNUTLS_X509_FMT_PEM);
  if (trust <= 0) return done(fmt::format("{}: no trusted certificate in it{}", o.ca_file.empty() ? "system trust store" : o.ca_file,
                                          trust < 0 ? std::string(": ") + gnutls_strerror(trust) : ""));
  gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
  const char* prio = o.tls12 ? "NORMAL:-VERS-ALL:+VERS-TLS1.2" : "NORMAL:-VERS-ALL:+VERS-TLS1.3";
  gnutls_priority_set_direct(s, prio, nullptr);
  gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
  const std::string name = o.verify_name.empty() ? o.host : o.verify_name;
  gnutls_server_name_set(s, GNUTLS_NAME_DNS, name.data(), name.size());
  gnutls_session_set_verify_cert(s, name.c_str(), 0);
  if (!o.no_alpn) {
    const gnutls_datum_t alpn{reinterpret_cast<unsigned char*>(const_cast<char*>(kAlpn)), sizeof(kAlpn) - 1};
    gnutls_alpn_set_protocols(s, &alpn, 1, 0);
  }
  gnutls_transport_set_int(s, fd);
  for (;;) {
    const int rc = gnutls_handshake(s);
    if (rc == 0) break;
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
      if (!wait(s, fd, deadline)) return done("TLS handshake timed out");
      continue;
    }
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
      gnutls_datum_t why{};
      gnutls_certificate_verification_status_print(gnutls_session_get_verify_cert_status(s),
                                                   GNUTLS_CRT_X509, &why, 0);
      std::string text(reinterpret_cast<const char*>(why.data), why.size);
      gnutls_free(why.data);
      return done("certificate not trusted: " + text);
    }
    return done(fmt::format("TLS handshake: {}", gnutls_strerror(rc)));
  }
  char* desc = gnutls_session_get_desc(s);
  r.tls = desc != nullptr ? desc : "";
  gnutls_free(desc);
  if (unsigned n = 0; const gnutls_datum_t* chain = gnutls_certificate_get_peers(s, &n)) {
    gnutls_x509_crt_t crt = nullptr;
    if (n > 0 && gnutls_x509_crt_init(&crt) == 0 && gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0) {
      gnutls_datum_t dn{};
      if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
        r.subject.assign(reinterpret_cast<const char*>(dn.data), dn.size);
        gnutls_free(dn.data);
      }
      r.expires_unix = gnutls_x509_crt_get_expiration_time(crt);
    }
    if (crt != nullptr) gnutls_x509_crt_deinit(crt);
  }
  KeRequest request;
  request.protocols = {kProtocolNtpV4};
  request.aeads = {kAeadAesSivCmac256};
  const std::vector<uint8_t> out = encode_request(request);
  for (size_t sent = 0; sent < out.size();) {
    const ssize_t n = gnutls_record_send(s, out.data() + sent, out.size() - sent);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      if (!wait(s, fd, deadline)) return done("sending the request timed out");
      continue;
    }
    if (n < 0) return done(fmt::format("sending the request: {}", gnutls_strerror(static_cast<int>(n))));
    sent += static_cast<size_t>(n);
  }
  std::vector<uint8_t> in;
  KeResponseParsed parsed;
  for (;;) {
    uint8_t buf[4096];
    const ssize_t n = gnutls_record_recv(s, buf, sizeof buf);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      if (!wait(s, fd, deadline)) return done("reading the response timed out");
      continue;
    }
    if (n <= 0) return done(n == 0 ? "the server closed the connection before End of Message"
                                   : fmt::format("reading the response: {}", gnutls_strerror(static_cast<int>(n))));
    in.insert(in.end(), buf, buf + n);
    parsed = parse_response(in);
    if (parsed.status == ParseStatus::kNeedMore) continue;
    break;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.server_error = parsed.server_error;
  if (parsed.status == ParseStatus::kError) return done(parsed.reason);
  if (parsed.protocols.size() != 1 || parsed.protocols[0] != kProtocolNtpV4)
    return done("the server did not agree to NTPv4");
  if (parsed.aeads.size() != 1 || parsed.aeads[0] != kAeadAesSivCmac256)
    return done("the server did not agree to AEAD 15 (AES-SIV-CMAC-256)");
  if (parsed.cookies.empty()) return done("the server sent no cookie");
  r.aead = parsed.aeads[0];
  r.cookies = std::move(parsed.cookies);
  r.ntp_server = parsed.server.value_or(o.host);
  r.ntp_port = parsed.port.value_or(123);
  for (uint8_t dir : {uint8_t{0}, uint8_t{1}}) {
    const uint8_t context[5] = {0, 0, 0, static_cast<uint8_t>(kAeadAesSivCmac256), dir};
    Key& k = dir == 0 ? r.keys.c2s : r.keys.s2c;
    if (gnutls_prf_rfc5705(s, sizeof(kExporterLabel) - 1, kExporterLabel, sizeof context,
                           reinterpret_cast<const char*>(context), k.size(), reinterpret_cast<char*>(k.data())) < 0)
      return done("TLS exporter failed");
  }
  gnutls_bye(s, GNUTLS_SHUT_RDWR);
  return done("");
}

}  // namespace strata::nts
