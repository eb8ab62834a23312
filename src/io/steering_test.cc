// The steering program, run by the kernel on a loopback reuseport group, must pick the socket
// that steering_index() predicts, for every source address, whatever the source port.
#include "io/steering.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/udp_backend.h"

namespace strata::io {
namespace {

// Which of `fds` received the one datagram just sent; -1 if none within a second.
int receiver(const std::vector<int>& fds) {
  std::vector<pollfd> p;
  for (int fd : fds) p.push_back({fd, POLLIN, 0});
  if (::poll(p.data(), p.size(), 1000) <= 0) return -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!(p[i].revents & POLLIN)) continue;
    char buf[64];
    ::recv(fds[i], buf, sizeof buf, 0);
    return static_cast<int>(i);
  }
  return -1;
}

void check_group(int prefix_bits, uint32_t n, const std::vector<std::string>& sources) {
  std::string error;
  base::Endpoint ep = *base::Endpoint::parse("127.0.0.1:0", std::nullopt);
  std::vector<int> fds;
  for (uint32_t i = 0; i < n; ++i) {
    const int fd = open_server_socket(ep, {}, error);
    ASSERT_GE(fd, 0) << error;
    if (ep.port == 0) ep.port = bound_endpoint(fd).port;
    fds.push_back(fd);
  }
  ASSERT_EQ(attach_steering(fds[0], base::Family::kV4, prefix_bits, n), "");
  std::vector<int> hits(n, 0);
  for (const std::string& text : sources) {
    const base::IpAddress src = *base::IpAddress::parse(text);
    // Three requests, each from a new socket (a new source port), as RFC 9109 clients do.
    for (int k = 0; k < 3; ++k) {
      const int c = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_storage ss;
      const socklen_t len = base::Endpoint{src, 0}.to_sockaddr(ss);
      ASSERT_EQ(::bind(c, reinterpret_cast<sockaddr*>(&ss), len), 0) << text;
      const socklen_t to_len = ep.to_sockaddr(ss);
      ASSERT_EQ(::sendto(c, "x", 1, 0, reinterpret_cast<sockaddr*>(&ss), to_len), 1);
      const int got = receiver(fds);
      EXPECT_EQ(got, static_cast<int>(steering_index(src, prefix_bits, n))) << text;
      if (got >= 0) ++hits[static_cast<size_t>(got)];
      ::close(c);
    }
  }
  for (uint32_t i = 0; i < n; ++i) EXPECT_GT(hits[i], 0) << "socket " << i << " got nothing";
  for (int fd : fds) ::close(fd);
}

TEST(Steering, KernelPicksThePredictedSocketPerAddress) {
  std::vector<std::string> sources;
  for (int i = 1; i <= 40; ++i) sources.push_back("127.0.0." + std::to_string(i));
  check_group(32, 4, sources);
}

TEST(Steering, APrefixStaysTogether) {
  std::vector<std::string> sources;
  for (int net = 0; net < 12; ++net)
    for (int host : {1, 77, 200}) sources.push_back("127.0." + std::to_string(net) + "." + std::to_string(host));
  check_group(24, 3, sources);
  // steering_index itself: all hosts of a /24 agree.
  for (int net = 0; net < 12; ++net) {
    const auto a = *base::IpAddress::parse("127.0." + std::to_string(net) + ".1");
    const auto b = *base::IpAddress::parse("127.0." + std::to_string(net) + ".254");
    EXPECT_EQ(steering_index(a, 24, 3), steering_index(b, 24, 3));
  }
}

TEST(Steering, Ipv6HashesTheConfiguredPrefixOnly) {
  const auto a = *base::IpAddress::parse("2001:db8:1:2::1");
  const auto b = *base::IpAddress::parse("2001:db8:1:2:ffff::9");
  EXPECT_EQ(steering_index(a, 64, 16), steering_index(b, 64, 16));
  // Different /64s spread over the sockets.
  std::vector<int> hits(16, 0);
  for (int i = 0; i < 1600; ++i) {
    auto c = *base::IpAddress::parse("2001:db8::");
    c.bytes[6] = static_cast<uint8_t>(i >> 8);
    c.bytes[7] = static_cast<uint8_t>(i);
    ++hits[steering_index(c, 64, 16)];
  }
  for (int h : hits) EXPECT_GT(h, 50);
  // The program for IPv6 loads four words at most and ends by returning A.
  const auto prog = steering_program(base::Family::kV6, 64, 16);
  EXPECT_EQ(prog.back().code, BPF_RET | BPF_A);
}

}  // namespace
}  // namespace strata::io
