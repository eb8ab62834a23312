// NTP time types: the 64-bit timestamp and the 32-bit short format, with conversions to and
// from Unix time (std::chrono) that resolve the 2036 era rollover against a pivot.
// Used by every module that touches packets or the clock; pure functions, any thread.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace strata::base {

// Wall-clock time in nanoseconds since the Unix epoch (CLOCK_REALTIME).
using RealTime = std::chrono::sys_time<std::chrono::nanoseconds>;
using Nanos = std::chrono::nanoseconds;

// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch): 70 years with 17 leap days.
inline constexpr int64_t kNtpUnixOffsetSeconds = 2'208'988'800;

// 64-bit NTP timestamp: 32-bit seconds since the start of its era, 32-bit binary fraction.
struct NtpTimestamp {
  uint64_t raw = 0;

  constexpr uint32_t seconds() const { return static_cast<uint32_t>(raw >> 32); }
  constexpr uint32_t fraction() const { return static_cast<uint32_t>(raw); }
  constexpr bool is_zero() const { return raw == 0; }
  static constexpr NtpTimestamp from_parts(uint32_t seconds, uint32_t fraction) {
    return NtpTimestamp{(static_cast<uint64_t>(seconds) << 32) | fraction};
  }
  friend constexpr bool operator==(NtpTimestamp, NtpTimestamp) = default;
};

// NTP short format (root delay, root dispersion): 16-bit seconds, 16-bit fraction.
struct NtpShort {
  uint32_t raw = 0;

  // Saturates: negative -> 0, >= 65536 s -> the largest value.
  static NtpShort from_seconds(double seconds);
  double to_seconds() const { return static_cast<double>(raw) / 65536.0; }
  friend constexpr bool operator==(NtpShort, NtpShort) = default;
};

// Unix time -> NTP timestamp. Times after 2036-02-07 wrap into era 1, as on the wire.
NtpTimestamp to_ntp(RealTime t);

// NTP timestamp -> Unix time, choosing the era that puts the result nearest to `pivot`
// (within +-68 years), so era-1 timestamps read correctly after 2036.
RealTime from_ntp(NtpTimestamp ts, RealTime pivot);

// a - b in seconds, computed in 64-bit two's complement so it is right across an era boundary
// as long as the true difference is under 68 years.
double ntp_diff_seconds(NtpTimestamp a, NtpTimestamp b);

// a - b as a signed 32.32 fixed-point value (raw difference), era-safe like ntp_diff_seconds.
inline constexpr int64_t ntp_diff_raw(NtpTimestamp a, NtpTimestamp b) {
  return static_cast<int64_t>(a.raw - b.raw);
}

// Duration -> NTP 32.32 fixed point (signed), and back.
int64_t to_ntp_fixed(Nanos d);
Nanos from_ntp_fixed(int64_t fixed);

// A kernel timespec (clock_gettime, SO_TIMESTAMPNS, SO_TIMESTAMPING) as nanoseconds.
inline Nanos nanos_of(const timespec& ts) { return Nanos{int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec}; }

// Reads CLOCK_REALTIME.
RealTime now_real();
// Reads CLOCK_MONOTONIC as nanoseconds (for intervals and timeouts).
Nanos now_mono();

}  // namespace strata::base
