// Log-linear histogram (see histogram.h).
#include "stats/histogram.h"

#include <bit>

namespace strata::stats {

size_t bucket_index(uint64_t v) {
  if (v < kSubBuckets) return static_cast<size_t>(v);
  const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
  if (msb > kMaxOctave) return kHistogramBuckets - 1;
  const unsigned shift = msb - kSubBucketBits;
  return (shift + 1) * kSubBuckets + static_cast<size_t>((v >> shift) & (kSubBuckets - 1));
}

uint64_t bucket_lower(size_t index) {
  if (index < kSubBuckets) return index;
  const unsigned shift = static_cast<unsigned>(index / kSubBuckets) - 1;
  return (kSubBuckets + index % kSubBuckets) << shift;
}

uint64_t bucket_upper(size_t index) {
  if (index < kSubBuckets) return index + 1;
  const unsigned shift = static_cast<unsigned>(index / kSubBuckets) - 1;
  return (kSubBuckets + index % kSubBuckets + 1) << shift;
}

uint64_t HistogramCounts::total() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

double HistogramCounts::quantile(double q) const {
  const uint64_t n = total();
  if (n == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  const double rank = q * static_cast<double>(n);
  double seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] == 0) continue;
    const double next = seen + static_cast<double>(buckets[i]);
    if (next >= rank) {
      const double lo = static_cast<double>(bucket_lower(i));
      const double hi = static_cast<double>(bucket_upper(i));
      return lo + (hi - lo) * (rank - seen) / static_cast<double>(buckets[i]);
    }
    seen = next;
  }
  return static_cast<double>(bucket_upper(buckets.size() - 1));
}

void HistogramCounts::merge(const HistogramCounts& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
}

double HistogramCounts::count_below(uint64_t bound) const {
  double n = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const uint64_t lo = bucket_lower(i), hi = bucket_upper(i);
    if (hi <= bound) {
      n += static_cast<double>(buckets[i]);
    } else if (lo < bound) {
      n += static_cast<double>(buckets[i]) * static_cast<double>(bound - lo) /
           static_cast<double>(hi - lo);
    }
  }
  return n;
}

void Histogram::add_to(HistogramCounts& out) const {
  for (size_t i = 0; i < buckets_.size(); ++i)
    out.buckets[i] += buckets_[i].load(std::memory_order_relaxed);
}

}  // namespace strata::stats
