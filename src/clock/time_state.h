// The server's time state (leap, stratum, reference id, error bounds) as the clock thread
// publishes it and the workers read it, once per batch, from a seqlock cell: one writer (the
// clock thread), any number of readers, no lock and no allocation on the read side.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "base/ntp_time.h"
#include "wire/packet.h"

namespace strata::clock {

enum class Source : uint8_t { kKernel, kMirror, kLocal };

// "kernel", "mirror", "local": as the config file names them.
const char* source_name(Source s);

struct TimeState {
  bool synchronised = false;
  Source source = Source::kLocal;
  wire::Leap leap = wire::Leap::kUnsynchronised;  // as the source says (not forced to 3)
  uint8_t stratum = wire::kStratumUnsynchronised;
  int8_t precision = -20;                         // log2 seconds
  uint32_t reference_id = 0;
  base::NtpTimestamp reference;
  double root_delay = 0;           // seconds
  double root_dispersion = 0;      // seconds, at `as_of`
  double dispersion_rate = 0;      // seconds per second of age, added on read
  base::RealTime as_of{};          // when the state was taken
  uint64_t updates = 0;            // how many times the clock thread published
};
static_assert(std::is_trivially_copyable_v<TimeState>);

// What to do with requests while the source is unsynchronised.
enum class UnsyncAction : uint8_t { kReply, kDrop };

// The reply fields at time `now`: dispersion grown with the state's age; an unsynchronised
// state is served as LI 3, stratum 16.
wire::ServerInfo server_info(const TimeState& state, base::RealTime now);

class TimeStateCell {
 public:
  TimeStateCell() { store(TimeState{}); }

  // Single writer.
  void store(const TimeState& state) {
    std::array<uint64_t, kWords> words{};
    std::memcpy(words.data(), &state, sizeof state);
    const uint64_t seq = seq_.load(std::memory_order_relaxed);
    seq_.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < kWords; ++i) words_[i].store(words[i], std::memory_order_relaxed);
    seq_.store(seq + 2, std::memory_order_release);
  }

  TimeState load() const {
    std::array<uint64_t, kWords> words{};
    uint64_t before = 0, after = 0;
    do {
      before = seq_.load(std::memory_order_acquire);
      for (size_t i = 0; i < kWords; ++i) words[i] = words_[i].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      after = seq_.load(std::memory_order_relaxed);
    } while (before != after || (before & 1) != 0);
    TimeState state;
    std::memcpy(static_cast<void*>(&state), words.data(), sizeof state);
    return state;
  }

 private:
  static constexpr size_t kWords = (sizeof(TimeState) + 7) / 8;
  alignas(64) std::atomic<uint64_t> seq_{0};
  std::array<std::atomic<uint64_t>, kWords> words_{};
};

}  // namespace strata::clock
