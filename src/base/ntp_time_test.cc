// Unit tests of NTP time conversions, including the 2036 era rollover.
#include "base/ntp_time.h"

#include <gtest/gtest.h>

namespace strata::base {
namespace {

RealTime unix_seconds(int64_t s, int64_t ns = 0) { return RealTime{Nanos{s * 1'000'000'000 + ns}}; }

TEST(NtpTime, NanosOfTimespecKeepsEveryNanosecondPast2038) {
  // 2100-01-01 00:00:00 UTC plus 999,999,999 ns: beyond 32-bit seconds, no rounding.
  const timespec ts{4'102'444'800, 999'999'999};
  EXPECT_EQ(nanos_of(ts).count(), 4'102'444'800'999'999'999);
  EXPECT_EQ(nanos_of(timespec{0, 1}).count(), 1);
}

TEST(NtpTime, UnixEpochIsNtpSeconds2208988800) {
  const NtpTimestamp t = to_ntp(unix_seconds(0));
  EXPECT_EQ(t.seconds(), 2208988800u);
  EXPECT_EQ(t.fraction(), 0u);
}

TEST(NtpTime, FractionOfHalfSecond) {
  EXPECT_EQ(to_ntp(unix_seconds(0, 500'000'000)).fraction(), 0x80000000u);
}

TEST(NtpTime, Era1StartsAt2036) {
  // 2036-02-07 06:28:16 UTC = Unix 2085978496: NTP seconds wrap to 0.
  const NtpTimestamp t = to_ntp(unix_seconds(2085978496));
  EXPECT_EQ(t.seconds(), 0u);
  const NtpTimestamp before = to_ntp(unix_seconds(2085978495));
  EXPECT_EQ(before.seconds(), 0xFFFFFFFFu);
  // The difference is still one second across the boundary.
  EXPECT_DOUBLE_EQ(ntp_diff_seconds(t, before), 1.0);
  EXPECT_DOUBLE_EQ(ntp_diff_seconds(before, t), -1.0);
}

TEST(NtpTime, FromNtpResolvesEraAgainstPivot) {
  const RealTime t2040 = unix_seconds(2208988800);  // 2040-01-01, in era 1
  const NtpTimestamp ts = to_ntp(t2040);
  EXPECT_LT(ts.seconds(), 200'000'000u);  // small: era 1
  EXPECT_EQ(from_ntp(ts, unix_seconds(2208988000)), t2040);
  // A pivot just before the rollover also finds era 1 for a timestamp just after it.
  const NtpTimestamp just_after = to_ntp(unix_seconds(2085978500));
  EXPECT_EQ(from_ntp(just_after, unix_seconds(2085978400)), unix_seconds(2085978500));
  // And era 0 for today.
  const RealTime today = unix_seconds(1795000000, 123456789);
  const RealTime back = from_ntp(to_ntp(today), today);
  EXPECT_LE(std::abs((back - today).count()), 1);
}

TEST(NtpTime, RoundTripKeepsNanosecondsWithinOne) {
  for (int64_t ns : {0LL, 1LL, 999LL, 123456789LL, 999999999LL}) {
    const RealTime t = unix_seconds(1700000000, ns);
    const RealTime back = from_ntp(to_ntp(t), t);
    EXPECT_LE(std::abs((back - t).count()), 1) << ns;
  }
}

TEST(NtpTime, BeforeUnixEpoch) {
  const NtpTimestamp t = to_ntp(unix_seconds(-1, 500'000'000));
  EXPECT_EQ(t.seconds(), 2208988799u);
  EXPECT_EQ(t.fraction(), 0x80000000u);
}

TEST(NtpTime, FixedPointDurations) {
  EXPECT_EQ(to_ntp_fixed(Nanos{1'000'000'000}), int64_t{1} << 32);
  EXPECT_EQ(to_ntp_fixed(Nanos{-500'000'000}), -(int64_t{1} << 31));
  EXPECT_EQ(from_ntp_fixed(int64_t{3} << 31).count(), 1'500'000'000);
  EXPECT_EQ(from_ntp_fixed(-(int64_t{1} << 31)).count(), -500'000'000);
}

TEST(NtpShort, RoundsUpAndSaturates) {
  EXPECT_EQ(NtpShort::from_seconds(0).raw, 0u);
  EXPECT_EQ(NtpShort::from_seconds(-1).raw, 0u);
  EXPECT_EQ(NtpShort::from_seconds(1.0).raw, 65536u);
  EXPECT_EQ(NtpShort::from_seconds(1e-9).raw, 1u);  // error bounds never round to zero
  EXPECT_EQ(NtpShort::from_seconds(1e9).raw, 0xFFFFFFFFu);
  EXPECT_DOUBLE_EQ(NtpShort{32768}.to_seconds(), 0.5);
}

}  // namespace
}  // namespace strata::base
