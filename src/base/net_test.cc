// Unit tests of address and endpoint parsing.
#include "base/log.h"
#include "base/net.h"

#include <gtest/gtest.h>

namespace strata::base {
namespace {

TEST(Net, ParsesV4AndV6Endpoints) {
  auto a = Endpoint::parse("192.0.2.1:123", std::nullopt);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->address.family, Family::kV4);
  EXPECT_EQ(a->port, 123);
  EXPECT_EQ(a->to_string(), "192.0.2.1:123");
  auto b = Endpoint::parse("[2001:db8::1]:4460", std::nullopt);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->address.family, Family::kV6);
  EXPECT_EQ(b->to_string(), "[2001:db8::1]:4460");
}

TEST(Net, DefaultPortAndBareV6) {
  EXPECT_EQ(Endpoint::parse("10.0.0.1", 123)->port, 123);
  EXPECT_EQ(Endpoint::parse("::1", 123)->address.family, Family::kV6);
  EXPECT_EQ(Endpoint::parse("[::1]", 123)->port, 123);
  EXPECT_FALSE(Endpoint::parse("10.0.0.1", std::nullopt));
}

TEST(Net, RejectsBadText) {
  for (const char* bad : {"", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:12a", "[::1", "[::1]x",
                          "host.example:123", "300.1.1.1:1", "[::1]:-1"})
    EXPECT_FALSE(Endpoint::parse(bad, 123)) << bad;
}

TEST(Net, RefusesAmbiguousBareV6WithPort) {
  // "::1:123" would be the address ::0.1.1.35: refused, with the bracketed forms as the hint.
  for (const char* bad : {"::1:123", "fe80::1:2", "2001:db8::1:8123"}) {
    EXPECT_FALSE(Endpoint::parse(bad, 123)) << bad;
    EXPECT_TRUE(ambiguous_v6_port(bad)) << bad;
  }
  EXPECT_EQ(endpoint_hint("::1:123"),
            "an IPv6 address with a port needs brackets: write [::1]:123 for port 123, or "
            "[::1:123] for the address alone");
  // Not ambiguous: removing the last group leaves no address, or there are brackets.
  for (const char* good : {"::1", "::", "2001:db8::123", "2001:db8:0:0:0:0:0:123", "[::1:123]",
                           "[::1]:123", "fe80::1"}) {
    EXPECT_TRUE(Endpoint::parse(good, 123)) << good;
    EXPECT_EQ(endpoint_hint(good), "") << good;
  }
  EXPECT_EQ(Endpoint::parse("[::1:123]", 123)->address.to_string(), "::0.1.1.35");
}

TEST(Net, SockaddrRoundTrip) {
  for (const char* text : {"127.0.0.1:9", "[fe80::1]:123", "[::]:0"}) {
    const Endpoint e = *Endpoint::parse(text, std::nullopt);
    sockaddr_storage ss;
    e.to_sockaddr(ss);
    EXPECT_EQ(*Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)), e) << text;
  }
}

TEST(Net, AddressClasses) {
  EXPECT_TRUE(IpAddress::parse("127.3.4.5")->is_loopback());
  EXPECT_TRUE(IpAddress::parse("::1")->is_loopback());
  EXPECT_TRUE(IpAddress::parse("0.0.0.0")->is_unspecified());
  EXPECT_TRUE(IpAddress::parse("::")->is_unspecified());
  EXPECT_TRUE(IpAddress::parse("224.0.1.1")->is_multicast());
  EXPECT_TRUE(IpAddress::parse("ff02::101")->is_multicast());
  EXPECT_TRUE(IpAddress::parse("fe80::1")->is_v6_link_local());
  EXPECT_EQ(IpAddress::v4(0x7F000001).to_string(), "127.0.0.1");
}

TEST(LogLimiter, BurstThenOnePerIntervalWithASuppressedCount) {
  LogLimiter limiter(3, std::chrono::seconds(60));
  using std::chrono::seconds;
  uint64_t suppressed = 99;
  int passed = 0;
  for (int i = 0; i < 1000; ++i)  // a flood: 1000 in the first second
    if (limiter.allow(seconds(1000) + std::chrono::milliseconds(i), suppressed)) ++passed;
  EXPECT_EQ(passed, 3);
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limiter.allow(seconds(1030), suppressed));
  ASSERT_TRUE(limiter.allow(seconds(1061), suppressed));  // a minute later: one more line
  EXPECT_EQ(suppressed, 998u);                              // and how many were held back
  EXPECT_FALSE(limiter.allow(seconds(1062), suppressed));
}

}  // namespace
}  // namespace strata::base
