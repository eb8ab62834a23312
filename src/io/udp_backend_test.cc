// Tests of the UDP backend on loopback: kernel receive timestamps, the local address of
// each request, replies leaving from the address the request hit, several sockets per worker.
#include "io/udp_backend.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>

namespace strata::io {
namespace {

int client_socket(base::Family f) {
  return ::socket(f == base::Family::kV4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

void send_to(int fd, const base::Endpoint& to, const char* text) {
  sockaddr_storage ss;
  const socklen_t len = to.to_sockaddr(ss);
  ASSERT_GT(::sendto(fd, text, std::strlen(text), 0, reinterpret_cast<sockaddr*>(&ss), len), 0);
}

std::string receive_from(int fd, base::Endpoint& from) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) return "";
  char buf[256];
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&ss), &len);
  from = *base::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss));
  return std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
}

TEST(UdpBackend, WildcardSocketRepliesFromTheAddressHit) {
  std::string error;
  const int fd = open_server_socket(*base::Endpoint::parse("0.0.0.0:0", std::nullopt), {}, error);
  ASSERT_GE(fd, 0) << error;
  const uint16_t port = bound_endpoint(fd).port;
  UdpBackend backend({fd}, 8);
  const int client = client_socket(base::Family::kV4);
  // 127.0.0.2 is local (all of 127/8 is) but not the "main" loopback address.
  const base::Endpoint target{*base::IpAddress::parse("127.0.0.2"), port};
  const base::RealTime before = base::now_real();
  send_to(client, target, "ping");
  std::vector<uint8_t> buf(64);
  std::vector<Packet> slots(1);
  slots[0].data = buf.data();
  slots[0].capacity = 64;
  ASSERT_EQ(backend.receive(slots, std::chrono::seconds(2)), 1u);
  const Packet& p = slots[0];
  EXPECT_EQ(std::string(reinterpret_cast<char*>(p.data), p.length), "ping");
  EXPECT_EQ(p.local.to_string(), "127.0.0.2");
  EXPECT_TRUE(p.rx_kernel_time);
  EXPECT_GE(p.rx_time, before);
  EXPECT_LE(p.rx_time, base::now_real());
  EXPECT_FALSE(p.truncated);
  std::memcpy(buf.data(), "pong", 4);
  slots[0].length = 4;
  ASSERT_EQ(backend.send(slots), 1u);
  EXPECT_TRUE(slots[0].sent);
  base::Endpoint from;
  EXPECT_EQ(receive_from(client, from), "pong");
  EXPECT_EQ(from.to_string(), "127.0.0.2:" + std::to_string(port));  // not 127.0.0.1
  ::close(client);
}

TEST(UdpBackend, TruncationAndTwoSocketsAndIpv6) {
  std::string error;
  const int v4 = open_server_socket(*base::Endpoint::parse("127.0.0.1:0", std::nullopt), {}, error);
  const int v6 = open_server_socket(*base::Endpoint::parse("[::1]:0", std::nullopt), {}, error);
  if (v6 < 0) GTEST_SKIP() << "no IPv6 loopback: " << error;
  ASSERT_GE(v4, 0) << error;
  const base::Endpoint a = bound_endpoint(v4), b = bound_endpoint(v6);
  UdpBackend backend({v4, v6}, 8);
  const int c4 = client_socket(base::Family::kV4), c6 = client_socket(base::Family::kV6);
  send_to(c4, a, "0123456789abcdef0123");  // 20 octets into a 16-octet slot
  send_to(c6, b, "six");
  std::vector<uint8_t> buf(16 * 2);
  std::vector<Packet> slots(2);
  for (int i = 0; i < 2; ++i) {
    slots[i].data = buf.data() + 16 * i;
    slots[i].capacity = 16;
  }
  int seen = 0;
  bool truncated_v4 = false, got_v6 = false;
  for (int tries = 0; tries < 10 && seen < 2; ++tries) {
    const size_t n = backend.receive(slots, std::chrono::milliseconds(500));
    for (size_t i = 0; i < n; ++i, ++seen) {
      if (slots[i].peer.address.family == base::Family::kV4) truncated_v4 = slots[i].truncated;
      if (slots[i].peer.address.family == base::Family::kV6) {
        got_v6 = true;
        EXPECT_EQ(slots[i].local.to_string(), "::1");
        EXPECT_EQ(slots[i].channel, 1);
      }
    }
  }
  EXPECT_EQ(seen, 2);
  EXPECT_TRUE(truncated_v4);
  EXPECT_TRUE(got_v6);
  ::close(c4);
  ::close(c6);
}

TEST(UdpBackend, WakeInterruptsReceive) {
  std::string error;
  const int fd = open_server_socket(*base::Endpoint::parse("127.0.0.1:0", std::nullopt), {}, error);
  UdpBackend backend({fd}, 4);
  backend.wake();
  std::vector<uint8_t> buf(64);
  std::vector<Packet> slots(1);
  slots[0].data = buf.data();
  slots[0].capacity = 64;
  const base::Nanos start = base::now_mono();
  EXPECT_EQ(backend.receive(slots, std::chrono::seconds(5)), 0u);
  EXPECT_LT(base::now_mono() - start, std::chrono::seconds(2));
}

TEST(UdpBackend, CountsKernelQueueDrops) {
  // A tiny receive buffer overflows at once: every datagram sent is either received or
  // counted as dropped by the kernel.
  std::string error;
  SocketOptions options;
  options.receive_buffer = 1;  // the kernel rounds it up to its minimum (a few datagrams)
  const int fd = open_server_socket(*base::Endpoint::parse("127.0.0.1:0", std::nullopt), options,
                                    error);
  ASSERT_GE(fd, 0) << error;
  const base::Endpoint server = bound_endpoint(fd);
  UdpBackend backend({fd}, 8);
  const int c = client_socket(base::Family::kV4);
  constexpr int kSent = 200;
  for (int i = 0; i < kSent; ++i) send_to(c, server, "0123456789012345678901234567890123456789");
  std::vector<uint8_t> buf(8 * 64);
  std::vector<Packet> slots(8);
  for (size_t i = 0; i < slots.size(); ++i) {
    slots[i].data = &buf[i * 64];
    slots[i].capacity = 64;
  }
  uint64_t received = 0;
  for (;;) {
    const size_t n = backend.receive(slots, base::Nanos{0});
    if (n == 0) break;
    received += n;
  }
  // The counters are read at most every 100 ms: wait past that and receive once more.
  const base::Nanos start = base::now_mono();
  while (base::now_mono() - start < std::chrono::milliseconds(150)) ::usleep(10'000);
  backend.receive(slots, base::Nanos{0});
  EXPECT_GT(backend.rx_queue_drops(), 0u);
  EXPECT_LT(received, static_cast<uint64_t>(kSent));
  EXPECT_EQ(received + backend.rx_queue_drops(), static_cast<uint64_t>(kSent));
  ::close(c);
}

TEST(UdpBackend, BindErrorsNameTheAddress) {
  std::string error;
  const int a = open_server_socket(*base::Endpoint::parse("192.0.2.55:123", std::nullopt), {}, error);
  EXPECT_LT(a, 0);
  EXPECT_NE(error.find("192.0.2.55:123"), std::string::npos) << error;
}

// Interleaved mode's plumbing on real sockets: SO_TIMESTAMPING receive times, a transmit
// timestamp only for the replies that ask, read back from the error queue by the next
// receive() with the reply's destination and first octets, on a bound socket (IPv4 and
// IPv6) and on a wildcard one, alone and beside another socket (epoll).
void check_tx_timestamps(const char* listen, const char* target_address, bool two_sockets) {
  SCOPED_TRACE(std::string(listen) + (two_sockets ? " beside another socket" : ""));
  SocketOptions options;
  options.tx_timestamps = true;
  std::string error;
  const int fd = open_server_socket(*base::Endpoint::parse(listen, std::nullopt), options, error);
  ASSERT_GE(fd, 0) << error;
  const uint16_t port = bound_endpoint(fd).port;
  std::vector<int> fds{fd};
  if (two_sockets) fds.push_back(open_server_socket(*base::Endpoint::parse("127.0.0.1:0", std::nullopt), options, error));
  UdpBackend backend(fds, 8);
  const base::Endpoint target{*base::IpAddress::parse(target_address), port};
  const int client = client_socket(target.address.family);
  std::vector<uint8_t> buf(8 * 64);
  std::vector<Packet> slots(8);
  for (size_t i = 0; i < slots.size(); ++i) {
    slots[i].data = &buf[i * 64];
    slots[i].capacity = 64;
  }
  const base::RealTime before = base::now_real();
  for (const char* text : {"first request", "second request"}) send_to(client, target, text);
  size_t got = 0;
  for (int tries = 0; got < 2 && tries < 20; ++tries)
    got += backend.receive(std::span(slots).subspan(got), std::chrono::milliseconds(200));
  ASSERT_EQ(got, 2u);
  EXPECT_TRUE(backend.take_tx_timestamps().empty());
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(slots[i].rx_kernel_time);
    EXPECT_GE(slots[i].rx_time, before);
    // 48 octets, the first with a mark; only the first reply asks for its timestamp.
    std::memset(slots[i].data, static_cast<int>('a' + i), 48);
    slots[i].length = 48;
    slots[i].want_tx_time = i == 0;
  }
  const base::RealTime sent_before = base::now_real();
  ASSERT_EQ(backend.send(std::span(slots).first(2)), 2u);
  const base::RealTime sent_after = base::now_real();
  base::Endpoint from;
  for (int i = 0; i < 2; ++i) EXPECT_EQ(receive_from(client, from).size(), 48u);
  // The next receive() reads the error queue first, whether or not a request comes.
  std::vector<TxTimestamp> stamps;
  for (int tries = 0; stamps.empty() && tries < 10; ++tries) {
    backend.receive(slots, std::chrono::milliseconds(50));
    for (const TxTimestamp& t : backend.take_tx_timestamps()) stamps.push_back(t);
  }
  ASSERT_EQ(stamps.size(), 1u);
  EXPECT_EQ(stamps[0].length, 48u);
  EXPECT_EQ(stamps[0].head[0], 'a');
  EXPECT_EQ(stamps[0].head[47], 'a');
  EXPECT_EQ(stamps[0].peer, target.address);  // the client's address: on loopback, the target's
  EXPECT_GE(stamps[0].time, sent_before);
  EXPECT_LE(stamps[0].time, sent_after);
  EXPECT_TRUE(backend.take_tx_timestamps().empty());  // taken once
  ::close(client);
}

TEST(UdpBackend, TransmitTimestampsOnRequestIpv4) { check_tx_timestamps("127.0.0.1:0", "127.0.0.1", false); }
TEST(UdpBackend, TransmitTimestampsOnRequestIpv6) { check_tx_timestamps("[::1]:0", "::1", false); }
TEST(UdpBackend, TransmitTimestampsOnAWildcardSocket) { check_tx_timestamps("0.0.0.0:0", "127.0.0.1", false); }
TEST(UdpBackend, TransmitTimestampsBesideAnotherSocket) { check_tx_timestamps("127.0.0.1:0", "127.0.0.1", true); }

}  // namespace
}  // namespace strata::io
