// NTP time conversions (see ntp_time.h).
#include "base/ntp_time.h"

#include <cmath>

namespace strata::base {

namespace {
constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kEraSeconds = int64_t{1} << 32;
}  // namespace

NtpShort NtpShort::from_seconds(double seconds) {
  if (!(seconds > 0)) return NtpShort{0};  // also catches NaN
  const double scaled = std::ceil(seconds * 65536.0);  // round up: errors must not shrink
  if (scaled >= 4294967295.0) return NtpShort{0xFFFFFFFFu};
  return NtpShort{static_cast<uint32_t>(scaled)};
}

NtpTimestamp to_ntp(RealTime t) {
  const int64_t ns = t.time_since_epoch().count();
  int64_t sec = ns / kNanosPerSecond;
  int64_t frac_ns = ns % kNanosPerSecond;
  if (frac_ns < 0) {
    frac_ns += kNanosPerSecond;
    sec -= 1;
  }
  const uint64_t ntp_sec = static_cast<uint64_t>(sec + kNtpUnixOffsetSeconds) & 0xFFFFFFFFu;
  const uint64_t fraction = (static_cast<uint64_t>(frac_ns) << 32) / kNanosPerSecond;
  return NtpTimestamp{(ntp_sec << 32) | fraction};
}

RealTime from_ntp(NtpTimestamp ts, RealTime pivot) {
  // Era-0 Unix seconds of the pivot, then pick the era offset that lands nearest to it.
  const int64_t pivot_ntp_sec =
      std::chrono::floor<std::chrono::seconds>(pivot).time_since_epoch().count() +
      kNtpUnixOffsetSeconds;
  const int64_t pivot_low = pivot_ntp_sec & (kEraSeconds - 1);
  int64_t delta = static_cast<int64_t>(ts.seconds()) - pivot_low;
  if (delta > kEraSeconds / 2) delta -= kEraSeconds;
  if (delta < -kEraSeconds / 2) delta += kEraSeconds;
  const int64_t unix_sec = pivot_ntp_sec + delta - kNtpUnixOffsetSeconds;
  const int64_t frac_ns = static_cast<int64_t>((uint64_t{ts.fraction()} * kNanosPerSecond) >> 32);
  return RealTime{Nanos{unix_sec * kNanosPerSecond + frac_ns}};
}

double ntp_diff_seconds(NtpTimestamp a, NtpTimestamp b) {
  return static_cast<double>(ntp_diff_raw(a, b)) / 4294967296.0;
}

int64_t to_ntp_fixed(Nanos d) {
  // Split to keep (ns << 32) from overflowing for durations up to +-68 years.
  const int64_t ns = d.count();
  const int64_t sec = ns / kNanosPerSecond;
  const int64_t rem = ns % kNanosPerSecond;
  return sec * (int64_t{1} << 32) + (rem * (int64_t{1} << 32)) / kNanosPerSecond;
}

Nanos from_ntp_fixed(int64_t fixed) {
  const int64_t sec = fixed >> 32;  // arithmetic shift: floor
  const int64_t frac = fixed & 0xFFFFFFFF;
  return Nanos{sec * kNanosPerSecond + ((frac * kNanosPerSecond) >> 32)};
}

RealTime now_real() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return RealTime{nanos_of(ts)};
}

Nanos now_mono() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return nanos_of(ts);
}

}  // namespace strata::base
