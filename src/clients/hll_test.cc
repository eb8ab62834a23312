// Tests of the HyperLogLog sketch (accuracy from 1 to 10 million, merging, the file form)
// and of the unique-client windows.
#include "clients/hll.h"

#include <gtest/gtest.h>

#include <cmath>

#include "clients/unique.h"

namespace strata::clients {
namespace {

uint64_t h(uint64_t i) { return hash_for_sketch(i, 0x1234); }

TEST(Hll, AccurateFromOneToTenMillion) {
  Hll s;
  EXPECT_EQ(s.estimate(), 0.0);
  uint64_t added = 0;
  for (uint64_t target : {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull}) {
    for (; added < target; ++added) s.add(h(added));
    const double e = s.estimate();
    const double error = std::abs(e - static_cast<double>(target)) / static_cast<double>(target);
    // 0.81% standard error; small counts are nearly exact.
    EXPECT_LT(error, target <= 1000 ? 0.01 : 0.02) << target << " estimated " << e;
    if (target == 10000000) RecordProperty("error_at_10M", std::to_string(error));
  }
  // Adding the same elements again changes nothing.
  const double before = s.estimate();
  for (uint64_t i = 0; i < 1000; ++i) s.add(h(i));
  EXPECT_EQ(s.estimate(), before);
}

TEST(Hll, ErrorAtTenMillionOverTenSketches) {
  // Ten independent sketches (different hash inputs) of 10 million clients each: the
  // relative errors' root mean square should be near the theoretical 0.81%.
  double sum_sq = 0, worst = 0;
  for (uint64_t run = 0; run < 10; ++run) {
    Hll s;
    for (uint64_t i = 0; i < 10000000; ++i) s.add(hash_for_sketch(i, run + 1));
    const double error = (s.estimate() - 1e7) / 1e7;
    sum_sq += error * error;
    worst = std::max(worst, std::abs(error));
  }
  const double rms = std::sqrt(sum_sq / 10);
  RecordProperty("rms_error_at_10M", std::to_string(rms));
  RecordProperty("worst_error_at_10M", std::to_string(worst));
  EXPECT_LT(rms, 0.012);
  EXPECT_LT(worst, 0.025);
}

TEST(Hll, MergeIsTheUnion) {
  Hll a, b;
  for (uint64_t i = 0; i < 600000; ++i) a.add(h(i));
  for (uint64_t i = 400000; i < 1000000; ++i) b.add(h(i));
  a.merge(b);
  EXPECT_NEAR(a.estimate(), 1000000, 20000);
}

TEST(Hll, Base64RoundTripAndRejects) {
  Hll a;
  for (uint64_t i = 0; i < 5000; ++i) a.add(h(i));
  const std::string text = a.to_base64();
  EXPECT_EQ(text.size(), 21848u);
  Hll b;
  ASSERT_TRUE(b.from_base64(text));
  EXPECT_EQ(a.registers(), b.registers());
  EXPECT_FALSE(b.from_base64("abc"));
  std::string bad = text;
  bad[100] = '*';
  EXPECT_FALSE(b.from_base64(bad));
  std::string too_big = Hll().to_base64();
  too_big[0] = '/';  // first register 63 > 51
  EXPECT_FALSE(b.from_base64(too_big));
}

TEST(UniqueCounter, WindowsFamiliesAndPrefixes) {
  UniqueCounter u;
  const int64_t t0 = 1'800'000'000LL * 1'000'000'000;  // a UTC day boundary
  // 1000 IPv4 clients in 10 /24s, 500 IPv6 clients in 5 /64s of one /48.
  for (uint32_t i = 0; i < 1000; ++i)
    u.add(AddressKey::from(base::IpAddress::v4(0x0a000000u + (i % 10) * 256 + i / 10)), t0, -1);
  for (uint32_t i = 0; i < 500; ++i) {
    base::IpAddress a = *base::IpAddress::parse("2001:db8:1::");
    a.bytes[7] = static_cast<uint8_t>(i % 5);
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    u.add(AddressKey::from(a), t0, -1);
  }
  const int64_t now_s = t0 / 1'000'000'000;
  auto count = [&](Window w, size_t kind, int64_t s) {
    Hll out;
    u.merge_into(w, kind, s / window_seconds(w), out);
    return out.estimate();
  };
  // Within 1% (the sketch's error at these sizes is about 0.5%).
  auto near = [](double got, double want) { return std::abs(got - want) <= std::max(0.6, 0.01 * want); };
  for (Window w : kWindows) {
    EXPECT_TRUE(near(count(w, 0, now_s), 1000)) << window_name(w) << " " << count(w, 0, now_s);
    EXPECT_TRUE(near(count(w, 1, now_s), 10)) << count(w, 1, now_s);
    EXPECT_TRUE(near(count(w, 2, now_s), 500)) << count(w, 2, now_s);
    EXPECT_TRUE(near(count(w, 3, now_s), 5)) << count(w, 3, now_s);
    EXPECT_TRUE(near(count(w, 4, now_s), 1)) << count(w, 4, now_s);
  }
  // 150 s later: a new minute window, the same hour and day.
  const int64_t t1 = t0 + 150'000'000'000;
  u.add(AddressKey::from(base::IpAddress::v4(0x0b000001u)), t1, -1);
  EXPECT_TRUE(near(count(Window::kMinute, 0, now_s + 150), 1));
  EXPECT_TRUE(near(count(Window::kDay, 0, now_s + 150), 1001));
  // The minute before t1 was never opened here: nothing to merge.
  Hll none;
  EXPECT_FALSE(u.merge_into(Window::kMinute, 0, (now_s + 60) / 60, none));
  // A client already seen in this window is skipped (its previous request is in it).
  u.add(AddressKey::from(base::IpAddress::v4(0x0c000001u)), t1, t1 - 1'000'000'000);
  EXPECT_TRUE(near(count(Window::kMinute, 0, now_s + 150), 1));
  // ... but counted in a window its previous request is not in.
  u.add(AddressKey::from(base::IpAddress::v4(0x0c000001u)), t1, t1 - 100'000'000'000);
  EXPECT_TRUE(near(count(Window::kMinute, 0, now_s + 150), 2));
  // Restore adds a saved sketch into a window.
  Hll saved;
  for (uint64_t i = 0; i < 100; ++i) saved.add(h(i));
  u.restore(Window::kDay, 0, (now_s + 150) / 86400, saved);
  EXPECT_TRUE(near(count(Window::kDay, 0, now_s + 150), 1102));
}

}  // namespace
}  // namespace strata::clients
