// Interleaved mode's RX -> TX table: one-shot entries, kernel timestamps replacing the
// daemon's, duplicates never served, addresses kept apart, eviction of the oldest.
#include "clients/interleave.h"

#include <gtest/gtest.h>

namespace strata::clients {
namespace {

base::IpAddress v4(uint32_t a) { return base::IpAddress::v4(a); }

using Saved = InterleaveTable::Saved;
constexpr uint64_t kUs = 4295;  // about a microsecond in 2^-32 s

TEST(InterleaveTable, SavedOnceTakenOnce) {
  InterleaveTable t(16);
  const uint64_t rx = (uint64_t{3'900'000'000} << 32) | 0x1235;
  ASSERT_EQ(Saved::kNew, t.save(rx, rx + 20 * kUs, v4(0x0A000001)));
  EXPECT_EQ(t.held(), 1u);
  const auto held = t.take(rx, v4(0x0A000001));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->tx, rx + 20 * kUs);
  EXPECT_FALSE(held->kernel);
  EXPECT_EQ(t.held(), 0u);
  EXPECT_FALSE(t.take(rx, v4(0x0A000001)));  // one-shot
}

TEST(InterleaveTable, KernelTimestampReplacesTheDaemons) {
  InterleaveTable t(16);
  const uint64_t rx = 0x0123456789abcdefULL | 1;
  ASSERT_EQ(Saved::kNew, t.save(rx, rx + 20 * kUs, v4(1)));
  EXPECT_TRUE(t.set_kernel_tx(rx, rx + 27 * kUs, v4(1)));
  const auto held = t.take(rx, v4(1));
  ASSERT_TRUE(held);
  EXPECT_EQ(held->tx, rx + 27 * kUs);
  EXPECT_TRUE(held->kernel);
  // Served already: a late kernel timestamp finds nothing.
  EXPECT_FALSE(t.set_kernel_tx(rx, rx + 28 * kUs, v4(1)));
}

TEST(InterleaveTable, TimestampsBeforeReceiveOrFarAfterAreRefused) {
  InterleaveTable t(16);
  const uint64_t rx = 0x10000001;
  EXPECT_EQ(Saved::kRefused, t.save(rx, rx - 1, v4(1)));
  EXPECT_EQ(Saved::kRefused, t.save(rx, rx + (uint64_t{1} << 31), v4(1)));  // half a second
  ASSERT_EQ(Saved::kNew, t.save(rx, rx + kUs, v4(1)));
  EXPECT_FALSE(t.set_kernel_tx(rx, rx - kUs, v4(1)));
  EXPECT_FALSE(t.set_kernel_tx(rx, rx + (uint64_t{3} << 31), v4(1)));
  EXPECT_FALSE(t.take(rx, v4(1))->kernel);  // the daemon's stays
}

TEST(InterleaveTable, AcrossTheNtpEra) {
  InterleaveTable t(16);
  const uint64_t rx = ~uint64_t{0} - 2 * kUs;  // 2036-02-07 06:28:16 minus a little
  ASSERT_EQ(Saved::kNew, t.save(rx, rx + 5 * kUs, v4(1)));  // wraps to era 1
  EXPECT_EQ(t.take(rx, v4(1))->tx, rx + 5 * kUs);
}

TEST(InterleaveTable, OnlyTheAddressItWasSentTo) {
  InterleaveTable t(16);
  base::IpAddress six;
  six.family = base::Family::kV6;
  six.bytes[15] = 1;
  const uint64_t rx = 0x77777777;
  ASSERT_EQ(Saved::kNew, t.save(rx, rx + kUs, v4(0xC0000201)));
  EXPECT_FALSE(t.take(rx, v4(0xC0000202)));
  EXPECT_FALSE(t.take(rx, six));
  EXPECT_FALSE(t.set_kernel_tx(rx, rx + 2 * kUs, v4(0xC0000202)));
  t.forget(rx, v4(0xC0000202));  // not its entry either
  EXPECT_TRUE(t.take(rx, v4(0xC0000201)));
}

TEST(InterleaveTable, DuplicateReceiveTimestampsAreNeverServed) {
  InterleaveTable t(16);
  const uint64_t rx = 0xabcdef01;
  ASSERT_EQ(Saved::kNew, t.save(rx, rx + kUs, v4(1)));
  EXPECT_EQ(Saved::kDuplicate, t.save(rx, rx + 2 * kUs, v4(2)));
  EXPECT_FALSE(t.take(rx, v4(1)));
  EXPECT_FALSE(t.take(rx, v4(2)));
  EXPECT_FALSE(t.set_kernel_tx(rx, rx + 3 * kUs, v4(1)));
}

TEST(InterleaveTable, ForgetRemoves) {
  InterleaveTable t(16);
  ASSERT_EQ(Saved::kNew, t.save(0x1001, 0x2001, v4(9)));
  t.forget(0x1001, v4(9));
  EXPECT_EQ(t.held(), 0u);
  EXPECT_FALSE(t.take(0x1001, v4(9)));
}

TEST(InterleaveTable, FullTableEvictsTheOldestAndCountsIt) {
  InterleaveTable t(4);  // one bucket of four
  ASSERT_EQ(t.capacity(), 4u);
  const uint64_t base = uint64_t{5} << 32;
  for (uint64_t i = 0; i < 4; ++i) ASSERT_EQ(Saved::kNew, t.save(base + i * 2 + 1, base + i * 2 + 1 + kUs, v4(1)));
  EXPECT_EQ(t.held(), 4u);
  ASSERT_EQ(Saved::kEvicted, t.save(base + 101, base + 101 + kUs, v4(1)));
  EXPECT_EQ(t.held(), 4u);
  EXPECT_FALSE(t.take(base + 1, v4(1)));  // the oldest went
  for (uint64_t i = 1; i < 4; ++i) EXPECT_TRUE(t.take(base + i * 2 + 1, v4(1)));
  EXPECT_TRUE(t.take(base + 101, v4(1)));
}

TEST(InterleaveTable, ManyClientsKeepTheirEntries) {
  // 50,000 clients' entries in a table sized 65,536 (76% full): nearly all still there.
  InterleaveTable t(65536);
  const uint64_t base = uint64_t{3'950'000'000} << 32;
  size_t evicted = 0;
  for (uint32_t i = 0; i < 50000; ++i) {
    const uint64_t rx = base + uint64_t{i} * 123457 * 2 + 1;
    const Saved s = t.save(rx, rx + 9 * kUs, v4(0x0B000000 + i));
    ASSERT_TRUE(s == Saved::kNew || s == Saved::kEvicted);
    evicted += s == Saved::kEvicted;
  }
  size_t found = 0;
  for (uint32_t i = 0; i < 50000; ++i) found += t.take(base + uint64_t{i} * 123457 * 2 + 1, v4(0x0B000000 + i)).has_value();
  EXPECT_GT(found, 49000u);
  EXPECT_EQ(found + evicted, 50000u);
  EXPECT_EQ(t.memory_bytes(), 65536u * 16);
}

}  // namespace
}  // namespace strata::clients
