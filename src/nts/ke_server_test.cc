// The NTS-KE server against our KE client over real TLS on loopback: cookies that open with
// the fleet's secrets and carry the exporter's keys, refusals (TLS 1.2, no ALPN, the
// connection cap, the per-prefix limit, slow clients) and certificate reload. Certificates
// are made by openssl in a temporary directory.
#include "nts/ke_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "nts/ke_client.h"

namespace strata::nts {
namespace {

using stats::Counter;

std::string make_dir() {
  std::string t = ::testing::TempDir() + "/ke-XXXXXX";
  return ::mkdtemp(t.data());
}

// A self-signed certificate for "localhost" (its own CA), in dir/NAME.crt and dir/NAME.key.
void make_cert(const std::string& dir, const std::string& name, const std::string& cn) {
  const std::string cmd = fmt::format(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 "
      "-subj /CN={2} -addext subjectAltName=DNS:localhost -keyout {0}/{1}.key -out {0}/{1}.crt "
      ">/dev/null 2>&1",
      dir, name, cn);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

struct KeFixture {
  std::string dir = make_dir();
  clients::Tracker tracker{[] {
    clients::TrackerOptions o;
    o.table.capacity = 64;
    o.prefix_capacity = 64;
    return o;
  }()};
  std::shared_ptr<Secrets> secrets = [] {
    auto s = std::make_shared<Secrets>();
    Key k{};
    k.fill(0x5e);
    s->secrets.push_back(make_secret(k));
    s->generation = 9001;
    return s;
  }();
  std::unique_ptr<KeServer> server;

  void start(KeOptions o) {
    make_cert(dir, "a", "strata-test-a");
    o.listen = {*base::Endpoint::parse("127.0.0.1:0", std::nullopt)};
    o.limits.min_spacing_s = 0;
    o.limits.leak = 0;
    o.limits.kod = false;
    server = std::make_unique<KeServer>(o, tracker);
    ASSERT_EQ(server->bind(), "");
    const CredentialsResult c = load_credentials(dir + "/a.crt", dir + "/a.key");
    ASSERT_TRUE(c.credentials) << c.error;
    server->set_credentials(c.credentials);
    server->set_secrets(secrets, KeyPolicy{});
    ASSERT_EQ(server->start(), "");
  }
  KeClientOptions client(const std::string& ca = "a") const {
    KeClientOptions c;
    c.host = "127.0.0.1";
    c.port = server->bound()[0].port;
    c.ca_file = dir + "/" + ca + ".crt";
    c.verify_name = "localhost";
    c.timeout_s = 5;
    return c;
  }
  // The counters are written before a connection is closed: wait for the close too.
  unsigned open_after_closes() const {
    for (int i = 0; i < 200 && server->open_connections() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return server->open_connections();
  }
  uint64_t counter(Counter c) const {
    stats::CounterTotals t{};
    server->add_counters(t);
    return t[stats::index(c)];
  }
  ~KeFixture() {
    if (server) server->stop();
    std::system(fmt::format("rm -rf {}", dir).c_str());
  }
};

TEST(NtsKeServer, IssuesCookiesThatCarryTheExportedKeys) {
  KeFixture f;
  KeOptions o;
  o.cookies = 5;
  o.ntp_server = "ntp.example.net";
  o.ntp_port = 1123;
  f.start(o);
  const KeClientResult r = ke_exchange(f.client());
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.aead, 15);
  ASSERT_EQ(r.cookies.size(), 5u);
  EXPECT_EQ(r.ntp_server, "ntp.example.net");
  EXPECT_EQ(r.ntp_port, 1123);
  EXPECT_NE(r.tls.find("TLS1.3"), std::string::npos) << r.tls;
  EXPECT_EQ(r.subject, "CN=strata-test-a");
  EXPECT_GT(r.expires_unix, 0);
  EXPECT_NE(r.keys.c2s, r.keys.s2c);
  CookieJar jar;  // an NTP worker of the same fleet
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& cookie : r.cookies) {
    SessionKeys keys;
    ASSERT_EQ(jar.open(*f.secrets, KeyPolicy{}, now, cookie, keys), CookieStatus::kOk);
    EXPECT_EQ(keys.c2s, r.keys.c2s);
    EXPECT_EQ(keys.s2c, r.keys.s2c);
  }
  EXPECT_NE(r.cookies[0], r.cookies[1]);
  for (int i = 0; i < 100 && f.counter(Counter::ke_completed) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(f.counter(Counter::ke_accepted), 1u);
  EXPECT_EQ(f.counter(Counter::ke_completed), 1u);
  EXPECT_EQ(f.counter(Counter::ke_cookies_issued), 5u);
  EXPECT_EQ(f.open_after_closes(), 0u);
  stats::HistogramCounts durations;
  f.server->add_durations(durations);
  EXPECT_EQ(durations.total(), 1u);
  EXPECT_EQ(f.open_after_closes(), 0u);
}

TEST(NtsKeServer, RefusesTls12AndMissingAlpn) {
  KeFixture f;
  f.start(KeOptions{});
  KeClientOptions old = f.client();
  old.tls12 = true;
  EXPECT_NE(ke_exchange(old).error, "");
  KeClientOptions no_alpn = f.client();
  no_alpn.no_alpn = true;
  EXPECT_NE(ke_exchange(no_alpn).error, "");
  for (int i = 0; i < 100 && f.counter(Counter::ke_failed_tls) + f.counter(Counter::ke_failed_alpn) < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(f.counter(Counter::ke_failed_tls), 1u);
  EXPECT_EQ(f.counter(Counter::ke_failed_alpn), 1u);
  EXPECT_EQ(f.counter(Counter::ke_completed), 0u);
  // A CA that did not sign the server's certificate: the client refuses.
  make_cert(f.dir, "other", "other");
  EXPECT_NE(ke_exchange(f.client("other")).error.find("not trusted"), std::string::npos);
}

int raw_connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// True when the server closed `fd` (a read sees end of file) within `ms`.
bool closed_within(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  return ::recv(fd, &c, 1, 0) == 0;
}

TEST(NtsKeServer, CapsConnectionsBeforeTlsAndTimesOutSlowClients) {
  KeFixture f;
  KeOptions o;
  o.max_connections = 2;
  o.timeout_s = 0.5;
  f.start(o);
  const uint16_t port = f.server->bound()[0].port;
  const int a = raw_connect(port), b = raw_connect(port);
  for (int i = 0; i < 100 && f.server->open_connections() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const int c = raw_connect(port);
  EXPECT_TRUE(closed_within(c, 300));  // the third: closed at once
  EXPECT_EQ(f.counter(Counter::ke_refused_connections), 1u);
  EXPECT_TRUE(closed_within(a, 2000));  // the two that never speak: closed at the deadline
  EXPECT_TRUE(closed_within(b, 2000));
  for (int i = 0; i < 100 && f.counter(Counter::ke_timeout) < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(f.counter(Counter::ke_timeout), 2u);
  EXPECT_EQ(f.open_after_closes(), 0u);
  // And the server still serves.
  EXPECT_EQ(ke_exchange(f.client()).error, "");
  for (int fd : {a, b, c}) ::close(fd);
}

TEST(NtsKeServer, HoldsBackAPrefixThatHandshakesInALoop) {
  KeFixture f;
  KeOptions o;
  o.limits.interval_s = 60;
  o.limits.burst = 3;
  f.start(o);
  int ok = 0;
  for (int i = 0; i < 6; ++i) ok += ke_exchange(f.client()).error.empty();
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(f.counter(Counter::ke_rate_limited), 3u);
  EXPECT_EQ(f.tracker.table().size(), 1u);  // the KE client is in the KE tracker's table
}

TEST(NtsKeServer, ReloadsTheCertificateForNewHandshakes) {
  KeFixture f;
  f.start(KeOptions{});
  EXPECT_EQ(ke_exchange(f.client()).subject, "CN=strata-test-a");
  make_cert(f.dir, "b", "strata-test-b");
  const CredentialsResult b = load_credentials(f.dir + "/b.crt", f.dir + "/b.key");
  ASSERT_TRUE(b.credentials) << b.error;
  f.server->set_credentials(b.credentials);
  const KeClientResult r = ke_exchange(f.client("b"));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.subject, "CN=strata-test-b");
  // Broken files are refused with the file's name, and the old credentials stay.
  EXPECT_EQ(load_credentials(f.dir + "/missing.crt", f.dir + "/b.key").error.rfind(f.dir + "/missing.crt: ", 0), 0u);
  EXPECT_NE(load_credentials(f.dir + "/a.crt", f.dir + "/b.key").error.find(f.dir + "/b.key: "), std::string::npos);
  std::system(fmt::format("echo garbage > {}/bad.crt", f.dir).c_str());
  EXPECT_EQ(load_credentials(f.dir + "/bad.crt", f.dir + "/b.key").error.rfind(f.dir + "/bad.crt: not a PEM", 0), 0u);
}

}  // namespace
}  // namespace strata::nts
