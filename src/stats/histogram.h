// Log-linear histogram of durations in nanoseconds (16 buckets per power of two, so a
// quantile read from it is within 6.25% of the true value: one bucket's width). Used for the server
// processing time in stratad (one per worker, summed on read) and for latencies in
// `strata load`. Single writer, any number of readers; fixed size, no allocation.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace strata::stats {

// 4 sub-bucket bits: 16 linear buckets per octave.
inline constexpr unsigned kSubBucketBits = 4;
inline constexpr unsigned kSubBuckets = 1u << kSubBucketBits;
// Octaves up to 2^36 ns (about 68 s); larger values land in the last bucket.
inline constexpr unsigned kMaxOctave = 36;
inline constexpr size_t kHistogramBuckets = (kMaxOctave - kSubBucketBits + 2) * kSubBuckets;

size_t bucket_index(uint64_t value);
uint64_t bucket_lower(size_t index);
uint64_t bucket_upper(size_t index);  // exclusive

// Plain counts: merged from workers, read for quantiles.
struct HistogramCounts {
  std::array<uint64_t, kHistogramBuckets> buckets{};

  uint64_t total() const;
  // q in [0, 1]; linear interpolation inside the bucket. 0 when empty.
  double quantile(double q) const;
  void merge(const HistogramCounts& other);
  // Count of samples below `bound` (exact at bucket edges, interpolated inside a bucket).
  double count_below(uint64_t bound) const;
};

class alignas(64) Histogram {
 public:
  void add(uint64_t value) {
    auto& b = buckets_[bucket_index(value)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void add_to(HistogramCounts& out) const;

 private:
  std::array<std::atomic<uint64_t>, kHistogramBuckets> buckets_{};
};

}  // namespace strata::stats
