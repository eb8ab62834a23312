// CLI name resolution (see resolve.h).
#include "cli/resolve.h"

#include <netdb.h>

#include <algorithm>
#include <stdexcept>

namespace strata::cli {

std::vector<base::Endpoint> resolve(const std::string& host_port, uint16_t default_port,
                                    FamilyFilter filter) {
  const auto hp = base::split_host_port(host_port);
  if (!hp || hp->host.empty()) throw std::runtime_error("bad server address '" + host_port + "'");
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_family = filter == FamilyFilter::kV4 ? AF_INET
                    : filter == FamilyFilter::kV6 ? AF_INET6
                                                  : AF_UNSPEC;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(hp->host.c_str(), nullptr, &hints, &res);
  if (rc != 0) throw std::runtime_error(hp->host + ": " + ::gai_strerror(rc));
  std::vector<base::Endpoint> out;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    auto ep = base::Endpoint::from_sockaddr(a->ai_addr);
    if (!ep) continue;
    ep->port = hp->port ? *hp->port : default_port;
    if (std::find(out.begin(), out.end(), *ep) == out.end()) out.push_back(*ep);
  }
  ::freeaddrinfo(res);
  if (out.empty()) throw std::runtime_error(hp->host + ": no address of the requested family");
  return out;
}

std::pair<std::string, uint16_t> split_host_port(const std::string& text, uint16_t default_port) {
  std::string host = text;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) throw std::invalid_argument("'" + text + "': no ']'");
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') throw std::invalid_argument("'" + text + "': expected :PORT after ']'");
      port = text.substr(close + 2);
    }
  } else if (const size_t colon = text.rfind(':'); colon != std::string::npos && text.find(':') == colon) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty()) return {host, default_port};
  char* end = nullptr;
  const unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (*end != '\0' || p == 0 || p > 65535) throw std::invalid_argument("'" + port + "' is not a port");
  return {host, static_cast<uint16_t>(p)};
}


}  // namespace strata::cli
