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

}  // namespace strata::cli
