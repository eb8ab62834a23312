// HyperLogLog: distinct-count sketch with 2^14 one-octet registers (16 KiB, standard error
// 1.04 / sqrt(16384) = 0.81%), estimated with Ertl's improved estimator ("New cardinality
// estimation algorithms for HyperLogLog sketches", 2017), which needs neither bias tables
// nor a switch to linear counting and is unbiased from 1 to far beyond 10^9. Sketches built
// with the same hash merge by taking register maxima, so several workers, several servers
// (behind ECMP or anycast) and several restarts add up to one count.
//
// Register writes are relaxed atomic byte stores: one writer (a worker), any number of
// concurrent readers (the control thread merging a copy).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::clients {

class Hll {
 public:
  static constexpr int kPrecision = 14;
  static constexpr size_t kRegisters = size_t{1} << kPrecision;
  static constexpr int kMaxRank = 64 - kPrecision + 1;  // 51

  // Adds one 64-bit hash (uniform). The caller hashes with a fixed function so that sketches
  // from different processes merge (see hash_for_sketch).
  void add(uint64_t hash) {
    const size_t index = hash >> (64 - kPrecision);
    const uint64_t rest = (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));
    const auto rank = static_cast<uint8_t>(__builtin_clzll(rest) + 1);
    std::atomic_ref<uint8_t> r(registers_[index]);
    if (r.load(std::memory_order_relaxed) < rank) r.store(rank, std::memory_order_relaxed);
  }

  // this = union of this and other.
  void merge(const Hll& other);
  // A copy safe against a concurrent writer of `other` (register by register).
  void copy_from(const Hll& other);
  void clear();
  bool empty() const;
  double estimate() const;

  // The registers as base64 text, and back (false when the text is not a sketch).
  std::string to_base64() const;
  bool from_base64(std::string_view text);

  const std::array<uint8_t, kRegisters>& registers() const { return registers_; }

 private:
  std::array<uint8_t, kRegisters> registers_{};
};

// The hash sketches use: fixed (not per process), so sketches from every stratad merge.
uint64_t hash_for_sketch(uint64_t lo, uint64_t hi);

}  // namespace strata::clients
