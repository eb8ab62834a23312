// Refusing to share a listen address (see address_in_use.h).
#include "io/address_in_use.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace strata::io {

namespace {

struct UdpSocket {
  base::Endpoint local;
  unsigned uid = 0;
  unsigned long inode = 0;
};

// "0100007F:007B" (IPv4) or 32 hex digits (IPv6), each 32-bit word in host order.
std::optional<base::Endpoint> parse_proc_address(const std::string& text, base::Family family) {
  const size_t colon = text.find(':');
  const size_t digits = family == base::Family::kV4 ? 8 : 32;
  if (colon != digits) return std::nullopt;
  base::Endpoint e;
  e.address.family = family;
  for (size_t w = 0; w < digits / 8; ++w) {
    const uint32_t word = static_cast<uint32_t>(std::stoul(text.substr(w * 8, 8), nullptr, 16));
    std::memcpy(e.address.bytes.data() + 4 * w, &word, 4);
  }
  e.port = static_cast<uint16_t>(std::stoul(text.substr(colon + 1), nullptr, 16));
  return e;
}

std::vector<UdpSocket> udp_sockets(base::Family family) {
  std::vector<UdpSocket> out;
  std::ifstream in(family == base::Family::kV4 ? "/proc/net/udp" : "/proc/net/udp6");
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits;
    UdpSocket s;
    unsigned long timeout = 0;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> s.uid >> timeout >> s.inode;
    if (!fields) continue;
    try {
      const auto e = parse_proc_address(local, family);
      if (!e) continue;
      s.local = *e;
    } catch (const std::exception&) {
      continue;
    }
    out.push_back(s);
  }
  return out;
}

// The process holding socket `inode`, from /proc/*/fd (all of them as root, else our own).
std::string process_of(unsigned long inode) {
  const std::string target = fmt::format("socket:[{}]", inode);
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return "";
  std::string found;
  while (dirent* d = ::readdir(proc)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    const std::string fd_dir = std::string("/proc/") + d->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    while (dirent* f = ::readdir(fds)) {
      char link[64];
      const std::string path = fd_dir + "/" + f->d_name;
      const ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = '\0';
      if (target != link) continue;
      std::ifstream comm(std::string("/proc/") + d->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      found = fmt::format("pid {} ({})", d->d_name, name.empty() ? "?" : name);
      break;
    }
    ::closedir(fds);
    if (!found.empty()) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace

std::string describe_udp_owner(const base::Endpoint& address) {
  for (const UdpSocket& s : udp_sockets(address.address.family)) {
    if (s.local.port != address.port) continue;
    if (!(s.local.address == address.address) && !s.local.address.is_unspecified() &&
        !address.address.is_unspecified())
      continue;
    const std::string process = process_of(s.inode);
    if (!process.empty()) return fmt::format("{}, uid {}", process, s.uid);
    return fmt::format("a socket of uid {} (inode {})", s.uid, s.inode);
  }
  return "";
}

std::string check_address_free(const base::Endpoint& address, const SocketOptions& options) {
  if (address.port == 0) return "";  // an ephemeral port is never shared
  const bool v4 = address.address.family == base::Family::kV4;
  const int fd = ::socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";  // the real bind will say what is wrong
  const int one = 1;
  if (!v4) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (options.freebind)
    ::setsockopt(fd, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_FREEBIND : IPV6_FREEBIND, &one, sizeof one);
  sockaddr_storage ss{};
  const socklen_t len = address.to_sockaddr(ss);
  const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
  const int error = errno;
  ::close(fd);
  if (rc == 0 || error != EADDRINUSE) return "";
  const std::string owner = describe_udp_owner(address);
  return fmt::format("{} is already in use{}: another server (perhaps another stratad, whose "
                     "SO_REUSEPORT group this one would silently join) serves it; stop it or "
                     "listen elsewhere",
                     address.to_string(), owner.empty() ? "" : " by " + owner);
}

}  // namespace strata::io
