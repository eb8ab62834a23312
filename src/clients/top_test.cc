// Tests of Space-Saving and the top-talker windows.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>

#include "clients/space_saving.h"
#include "clients/top.h"

namespace strata::clients {
namespace {

AddressKey v4(uint32_t a) { return AddressKey::from(base::IpAddress::v4(a)); }

TEST(SpaceSaving, ExactBelowCapacity) {
  SpaceSaving s(16);
  std::map<uint32_t, uint64_t> truth;
  for (uint32_t i = 0; i < 1000; ++i) {
    const uint32_t a = i % 10;
    s.add(v4(a), a + 1);
    truth[a] += a + 1;
  }
  const auto top = s.top();
  ASSERT_EQ(top.size(), 10u);
  for (const auto& e : top) {
    EXPECT_EQ(e.count, truth[e.key.address().v4_host_order()]);
    EXPECT_EQ(e.error, 0u);
  }
  EXPECT_EQ(top[0].key, v4(9));
  EXPECT_EQ(s.total(), 5500u);
}

TEST(SpaceSaving, AFloodOfOnePacketSourcesCannotPushHeavyHittersOut) {
  // 1,000,000 spoofed sources, one request each, interleaved with five real talkers that
  // send 1% of the traffic each; k = 512.
  SpaceSaving s(512);
  std::mt19937_64 rng(3);
  const uint32_t heavy[5] = {0xc0000201, 0xc0000202, 0xc6336401, 0xcb007101, 0x0a0a0a0a};
  uint64_t heavy_sent[5] = {};
  uint64_t n = 0;
  for (uint32_t i = 0; i < 1000000; ++i) {
    s.add(v4(0x64000000u + i), 1);
    ++n;
    if (i % 95 == 0) {
      const size_t h = i / 95 % 5;
      s.add(v4(heavy[h]), 1);
      ++heavy_sent[h];
      ++n;
    }
  }
  const auto top = s.top();
  for (size_t h = 0; h < 5; ++h) {
    bool found = false;
    for (size_t i = 0; i < 5; ++i) {
      if (top[i].key != v4(heavy[h])) continue;
      found = true;
      EXPECT_GE(top[i].count, heavy_sent[h]);               // never under
      EXPECT_LE(top[i].count - top[i].error, heavy_sent[h]);  // the guaranteed part
      EXPECT_LE(top[i].error, n / 512);
    }
    EXPECT_TRUE(found) << h;
  }
}

TEST(SpaceSaving, MergeAddsCountsAndKeepsTheGuarantee) {
  SpaceSaving a(64), b(64);
  for (int i = 0; i < 10000; ++i) {
    a.add(v4(1), 1);
    b.add(v4(2), 1);
    a.add(v4(1000 + i), 1);
    b.add(v4(1000 + i), 1);
  }
  b.add(v4(1), 500);
  a.merge(b);
  const auto top = a.top();
  EXPECT_EQ(a.total(), 40500u);
  EXPECT_EQ(top[0].key, v4(1));
  EXPECT_GE(top[0].count, 10500u);
  EXPECT_EQ(top[1].key, v4(2));
  EXPECT_GE(top[1].count, 10000u);
  EXPECT_LE(top.size(), 64u);
}

TEST(FilteredSpaceSaving, ExactBelowCapacityAndKeepsTheGuaranteesUnderAFlood) {
  // Below capacity the filter is never consulted: exact counts.
  {
    SpaceSaving s(16);
    SpaceSavingFilter f(64);
    for (uint32_t i = 0; i < 1000; ++i) s.add(v4(i % 10), SpaceSaving::hash_of(v4(i % 10)), 3, &f);
    for (const auto& e : s.top()) {
      EXPECT_EQ(e.count, 300u);
      EXPECT_EQ(e.error, 0u);
    }
  }
  // The flood of the unfiltered test (1,000,000 one-off sources and five talkers at 1%
  // each, k = 512) through a filter of 4,096 counters: the same guarantees hold.
  SpaceSaving s(512);
  SpaceSavingFilter f(4096);
  const std::array<uint32_t, 5> heavy = {0xc0000201, 0xc0000202, 0xc6336401, 0xcb007101, 0x0a0a0a0a};
  std::map<uint32_t, uint64_t> sent;
  auto add = [&](uint32_t a) {
    s.add(v4(a), SpaceSaving::hash_of(v4(a)), 1, &f);
    ++sent[a];
  };
  for (uint32_t i = 0; i < 1000000; ++i) {
    add(0x64000000u + i);
    if (i % 95 == 0) add(heavy[i / 95 % 5]);
  }
  const uint64_t n = s.total();
  EXPECT_EQ(n, 1000000u + 1000000u / 95 + 1);
  std::map<uint32_t, SpaceSaving::Entry> found;
  for (const auto& e : s.top()) found[e.key.address().v4_host_order()] = e;
  for (const uint32_t h : heavy) {
    ASSERT_TRUE(found.count(h)) << h;
    const SpaceSaving::Entry& e = found[h];
    EXPECT_GE(e.count, sent[h]);
    EXPECT_LE(e.count - e.error, sent[h]);
    EXPECT_LE(e.error, n / 512);
  }
  const auto top = s.top();
  // No count under the truth for the one-off sources that stayed in (each sent 1).
  uint64_t sum = 0;
  for (const auto& e : top) sum += e.count;
  EXPECT_LE(sum, n);  // the summary never holds more weight than was added
  EXPECT_LE(s.min_count(), n / 512);
}

TEST(FilteredSpaceSaving, CountsNeverUnderTheTruthOnASkewedStream) {
  // Zipf-like traffic over 20,000 keys; every key in the summary has count >= its true
  // weight and count - error <= it, with weights of 48 to 1,000 octets.
  SpaceSaving s(128);
  SpaceSavingFilter f(1024);
  std::mt19937_64 rng(11);
  std::map<uint32_t, uint64_t> truth;
  for (int i = 0; i < 300000; ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    const auto key = static_cast<uint32_t>(20000 * u * u * u);
    const uint64_t w = 48 + rng() % 953;
    s.add(v4(key), SpaceSaving::hash_of(v4(key)), w, &f);
    truth[key] += w;
  }
  for (const auto& e : s.top()) {
    const uint64_t t = truth[e.key.address().v4_host_order()];
    EXPECT_GE(e.count, t);
    EXPECT_LE(e.count - e.error, t);
  }
  EXPECT_EQ(s.top()[0].key, v4(0));
}

TEST(TopTalkers, MinutesRollIntoHoursAndDays) {
  TopTalkers t(64);
  const int64_t day0 = 1'800'000'000LL * 1'000'000'000;  // a UTC day boundary
  auto at = [&](int64_t s) { return day0 + s * 1'000'000'000; };
  for (int i = 0; i < 30; ++i) t.add(v4(0x0a000001), 76, at(10));        // minute 0
  for (int i = 0; i < 10; ++i) t.add(v4(0x0a000102), 1076, at(70));      // minute 1
  t.add(v4(0x0b000001), 76, at(130));                                     // minute 2
  const int64_t m0 = day0 / 1'000'000'000 / 60;
  auto top = [&](Window w, int64_t number, TopKind k) {
    SpaceSaving s(64);
    t.merge_into(w, number, k, s);
    return s;
  };
  // Minute 1 is the previous minute now; minute 0 has rolled into the hour.
  EXPECT_EQ(top(Window::kMinute, m0 + 1, TopKind::kAddressRequests).total(), 10u);
  EXPECT_EQ(top(Window::kMinute, m0 + 2, TopKind::kAddressRequests).total(), 1u);
  const SpaceSaving hour = top(Window::kHour, m0 / 60, TopKind::kAddressRequests);
  EXPECT_EQ(hour.total(), 41u);
  EXPECT_EQ(hour.top()[0].key, v4(0x0a000001));
  const SpaceSaving bytes = top(Window::kDay, m0 / 1440, TopKind::kAddressBytes);
  EXPECT_EQ(bytes.top()[0].key, v4(0x0a000102));  // fewer requests, more bytes
  EXPECT_EQ(bytes.total(), 30u * 76 + 10 * 1076 + 76);
  // By prefix: 10.0.0.0/24 and 10.0.1.0/24 are different, 11.0.0.0/24 a third.
  const SpaceSaving prefixes = top(Window::kDay, m0 / 1440, TopKind::kPrefixRequests);
  EXPECT_EQ(prefixes.top().size(), 3u);
  EXPECT_EQ(prefixes.top()[0].key, v4(0x0a000000));
}

}  // namespace
}  // namespace strata::clients
