// IP address and endpoint parsing and conversions (see net.h).
#include "base/net.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <cstring>

namespace strata::base {

IpAddress IpAddress::v4(uint32_t host_order) {
  IpAddress a;
  a.family = Family::kV4;
  a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
  a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
  a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
  a.bytes[3] = static_cast<uint8_t>(host_order);
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpAddress a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = Family::kV4;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.family = Family::kV6;
    return a;
  }
  return std::nullopt;
}

uint32_t IpAddress::v4_host_order() const {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         bytes[3];
}

bool IpAddress::is_unspecified() const {
  const size_t n = family == Family::kV4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i)
    if (bytes[i] != 0) return false;
  return true;
}

bool IpAddress::is_loopback() const {
  if (family == Family::kV4) return bytes[0] == 127;
  for (size_t i = 0; i < 15; ++i)
    if (bytes[i] != 0) return false;
  return bytes[15] == 1;
}

bool IpAddress::is_multicast() const {
  if (family == Family::kV4) return (bytes[0] & 0xF0) == 0xE0;
  return bytes[0] == 0xFF;
}

bool IpAddress::is_v6_link_local() const {
  return family == Family::kV6 && bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0x80;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == Family::kV4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

bool ambiguous_v6_port(std::string_view text) {
  if (text.empty() || text.front() == '[') return false;
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || text.find(':') == colon) return false;
  const std::string_view last = text.substr(colon + 1);
  if (last.empty() || last.size() > 5) return false;
  for (char c : last)
    if (c < '0' || c > '9') return false;
  return IpAddress::parse(text.substr(0, colon)).has_value() && IpAddress::parse(text).has_value();
}

std::string endpoint_hint(std::string_view text) {
  if (!ambiguous_v6_port(text)) return "";
  const size_t colon = text.rfind(':');
  return fmt::format("an IPv6 address with a port needs brackets: write [{}]:{} for port {}, or [{}] "
                     "for the address alone",
                     text.substr(0, colon), text.substr(colon + 1), text.substr(colon + 1), text);
}

std::optional<HostPort> split_host_port(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    hp.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = text.rfind(':');
    // More than one colon and no brackets: a bare IPv6 address without a port.
    if (colon != std::string_view::npos && text.find(':') == colon) {
      hp.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      has_port = true;
    } else {
      // A bare IPv6 address whose last group could be a port ("::1:123") is refused: it
      // would silently become another address (::0.1.1.35).
      if (ambiguous_v6_port(text)) return std::nullopt;
      hp.host = std::string(text);
    }
  }
  if (has_port) {
    unsigned value = 0;
    const auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
        value > 65535)
      return std::nullopt;
    hp.port = static_cast<uint16_t>(value);
  }
  return hp;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text,
                                        std::optional<uint16_t> default_port) {
  const auto hp = split_host_port(text);
  if (!hp) return std::nullopt;
  const auto addr = IpAddress::parse(hp->host);
  if (!addr) return std::nullopt;
  if (!hp->port && !default_port) return std::nullopt;
  return Endpoint{*addr, hp->port ? *hp->port : *default_port};
}

std::string Endpoint::to_string() const {
  if (address.family == Family::kV6) return "[" + address.to_string() + "]:" + std::to_string(port);
  return address.to_string() + ":" + std::to_string(port);
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage& out) const {
  std::memset(&out, 0, sizeof out);
  if (address.family == Family::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, address.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, address.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

std::optional<Endpoint> Endpoint::from_sockaddr(const sockaddr* sa) {
  Endpoint e;
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    e.address.family = Family::kV4;
    std::memcpy(e.address.bytes.data(), &sin->sin_addr, 4);
    e.port = ntohs(sin->sin_port);
    return e;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.address.family = Family::kV6;
    std::memcpy(e.address.bytes.data(), &sin6->sin6_addr, 16);
    e.port = ntohs(sin6->sin6_port);
    return e;
  }
  return std::nullopt;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  const int max_bits = address->family == Family::kV4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view b = text.substr(slash + 1);
    bits = 0;
    if (b.empty() || b.size() > 3) return std::nullopt;
    for (char c : b) {
      if (c < '0' || c > '9') return std::nullopt;
      bits = bits * 10 + (c - '0');
    }
    if (bits > max_bits) return std::nullopt;
  }
  Cidr c{*address, bits};
  for (int i = 0; i < 16; ++i) {
    const int keep = bits - 8 * i;
    if (keep >= 8) continue;
    c.address.bytes[static_cast<size_t>(i)] &= keep <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  return c;
}

bool Cidr::contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  for (int i = 0; i < 16; ++i) {
    const int keep = bits - 8 * i;
    if (keep <= 0) break;
    const uint8_t mask = keep >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - keep));
    if ((a.bytes[static_cast<size_t>(i)] & mask) != address.bytes[static_cast<size_t>(i)]) return false;
  }
  return true;
}

std::string Cidr::to_string() const { return address.to_string() + "/" + std::to_string(bits); }

}  // namespace strata::base
