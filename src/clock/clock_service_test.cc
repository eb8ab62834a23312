// Tests of the clock thread against a fake mirrored server on loopback: it follows the
// server's state, and goes unsynchronised when the server falls silent.
#include "clock/clock_service.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "io/udp_backend.h"

namespace strata::clock {
namespace {

// Answers client requests with a fixed stratum-3 state while `answer` is set.
class FakeServer {
 public:
  FakeServer() {
    std::string error;
    fd_ = io::open_server_socket(*base::Endpoint::parse("127.0.0.1:0", std::nullopt), {}, error);
    EXPECT_GE(fd_, 0) << error;
    endpoint_ = io::bound_endpoint(fd_);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  base::Endpoint endpoint() const { return endpoint_; }
  std::atomic<bool> answer{true};
  std::atomic<bool> kiss{false};     // answer with a KoD RATE
  std::atomic<bool> unmatched{false};  // answer with a wrong origin timestamp

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      uint8_t buf[512];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 48 || !answer) continue;
      const wire::Request req = wire::parse_request({buf, static_cast<size_t>(n)});
      wire::ServerInfo info;
      info.leap = wire::Leap::kNone;
      info.stratum = 3;
      info.reference_id = 0xC0000202;
      info.root_delay = base::NtpShort::from_seconds(0.004);
      info.root_dispersion = base::NtpShort::from_seconds(0.008);
      uint8_t out[48];
      const auto now = base::to_ntp(base::now_real());
      if (kiss) {
        info.stratum = 0;
        info.reference_id = 0x52415445;
      }
      wire::build_reply(req, info, now, 0, out);
      wire::stamp_transmit(out, now);
      if (unmatched) out[24] ^= 0xFF;  // the origin timestamp
      ::sendto(fd_, out, sizeof out, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  int fd_ = -1;
  base::Endpoint endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Polls every 0.1 s, unsynchronised after 1 s without a usable reply.
Options mirror_of(const FakeServer& server) {
  Options o;
  o.source = Source::kMirror;
  o.mirror = server.endpoint();
  o.mirror_interval = 0.1;
  o.mirror_timeout = 1.0;
  return o;
}

TEST(ClockService, MirrorFollowsServerThenTimesOut) {
  FakeServer server;
  TimeStateCell cell;
  ClockService service(mirror_of(server), cell);
  service.refresh();
  TimeState s = cell.load();
  EXPECT_TRUE(s.synchronised);
  EXPECT_EQ(s.stratum, 3);
  EXPECT_EQ(s.reference_id, 0xC0000202u);
  EXPECT_NEAR(s.root_delay, 0.004, 1e-4);
  EXPECT_GE(s.root_dispersion, 0.008);
  server.answer = false;
  service.refresh();  // one miss: still within the timeout
  EXPECT_TRUE(cell.load().synchronised);
  EXPECT_FALSE(service.describe().empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  service.refresh();
  s = cell.load();
  EXPECT_FALSE(s.synchronised);
  EXPECT_EQ(s.reference_id, 0xC0000202u);  // last known values stay for display
  server.answer = true;
  service.refresh();
  EXPECT_TRUE(cell.load().synchronised);
}

TEST(ClockService, MirrorKissOfDeathAndUnmatchedRepliesAreNotUsed) {
  FakeServer server;
  TimeStateCell cell;
  ClockService service(mirror_of(server), cell);
  service.refresh();
  ASSERT_TRUE(cell.load().synchronised);
  server.kiss = true;
  service.refresh();
  // A KoD is no time: the last good state stays (stratum 3, not 0 or 16) until the timeout.
  EXPECT_TRUE(cell.load().synchronised);
  EXPECT_EQ(cell.load().stratum, 3);
  EXPECT_EQ(service.describe(), "kiss-o'-death RATE");
  server.kiss = false;
  server.unmatched = true;
  service.refresh();
  EXPECT_EQ(service.describe(), "no reply to our request (1 datagram that does not answer it)");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  service.refresh();
  EXPECT_FALSE(cell.load().synchronised);
  server.unmatched = false;
  service.refresh();
  EXPECT_TRUE(cell.load().synchronised);
  EXPECT_EQ(service.describe(), "");
}

TEST(ClockService, MirrorWithNothingListeningIsUnsynchronised) {
  // Bind and close a socket to find a port with nobody behind it.
  std::string error;
  const int fd = io::open_server_socket(*base::Endpoint::parse("127.0.0.1:0", std::nullopt), {}, error);
  const base::Endpoint dead = io::bound_endpoint(fd);
  ::close(fd);
  Options o;
  o.source = Source::kMirror;
  o.mirror = dead;
  o.mirror_interval = 0.2;
  TimeStateCell cell;
  ClockService service(o, cell);
  service.start();
  const TimeState s = cell.load();
  EXPECT_FALSE(s.synchronised);
  EXPECT_EQ(s.source, Source::kMirror);
  EXPECT_GE(s.updates, 1u);
  service.stop();
}

TEST(ClockService, LocalAndKernelPublish) {
  TimeStateCell cell;
  Options local;
  local.source = Source::kLocal;
  local.stratum = 7;
  ClockService l(local, cell);
  l.start();
  EXPECT_TRUE(cell.load().synchronised);
  EXPECT_EQ(cell.load().stratum, 7);
  l.stop();
  Options kernel;  // whatever this machine's clock says; it must publish something
  ClockService k(kernel, cell);
  k.refresh();
  EXPECT_EQ(cell.load().source, Source::kKernel);
}

}  // namespace
}  // namespace strata::clock
