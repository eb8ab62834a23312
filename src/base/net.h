// IP addresses and endpoints (IPv4 and IPv6), their text forms ("192.0.2.1:123",
// "[2001:db8::1]:123") and sockaddr conversions. Used by config, io, the CLI and tests.
// Plain values; any thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::base {

enum class Family : uint8_t { kV4, kV6 };

struct IpAddress {
  Family family = Family::kV4;
  // IPv4 in the first 4 octets, network order.
  std::array<uint8_t, 16> bytes{};

  static IpAddress v4(uint32_t host_order);
  static std::optional<IpAddress> parse(std::string_view text);
  uint32_t v4_host_order() const;
  bool is_unspecified() const;
  bool is_loopback() const;
  bool is_multicast() const;
  bool is_v6_link_local() const;
  std::string to_string() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;

  // "a.b.c.d:port", "[v6]:port"; a bare address takes default_port (nullopt: port required).
  static std::optional<Endpoint> parse(std::string_view text, std::optional<uint16_t> default_port);
  std::string to_string() const;
  // Fills `out` and returns the length to pass to bind/sendto.
  socklen_t to_sockaddr(sockaddr_storage& out) const;
  static std::optional<Endpoint> from_sockaddr(const sockaddr* sa);
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// An address prefix: "192.0.2.0/24", "2001:db8::/32"; a bare address is a full-length prefix.
struct Cidr {
  IpAddress address;  // bits past the length are zero
  int bits = 0;

  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& a) const;
  std::string to_string() const;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// Splits "host:port", "[v6]:port", "host" or "v6" into host and optional port text.
// Returns nullopt when the port part is present but not a number in 0..65535.
struct HostPort {
  std::string host;
  std::optional<uint16_t> port;
};
std::optional<HostPort> split_host_port(std::string_view text);

// True for a bare IPv6 address whose last group could be meant as a port ("::1:123", which
// would otherwise be the address ::0.1.1.35): split_host_port refuses it.
bool ambiguous_v6_port(std::string_view text);
// For an error message: how to write `text` unambiguously, or "" when it is not ambiguous.
std::string endpoint_hint(std::string_view text);

}  // namespace strata::base
