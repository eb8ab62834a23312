// Unit tests of the log-linear histogram and the counter list.
#include "stats/histogram.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "stats/counters.h"

namespace strata::stats {
namespace {

TEST(Histogram, BucketsTileTheRange) {
  for (size_t i = 0; i + 1 < kHistogramBuckets; ++i) {
    EXPECT_EQ(bucket_upper(i), bucket_lower(i + 1)) << i;
    EXPECT_EQ(bucket_index(bucket_lower(i)), i);
    EXPECT_EQ(bucket_index(bucket_upper(i) - 1), i);
  }
  EXPECT_EQ(bucket_index(0), 0u);
  EXPECT_EQ(bucket_index(~uint64_t{0}), kHistogramBuckets - 1);
}

TEST(Histogram, BucketWidthIsAtMostASixteenth) {
  for (size_t i = kSubBuckets; i < kHistogramBuckets; ++i) {
    const double lo = static_cast<double>(bucket_lower(i));
    const double hi = static_cast<double>(bucket_upper(i));
    EXPECT_LE((hi - lo) / lo, 0.0625 + 1e-12);
  }
}

TEST(Histogram, QuantilesWithinOneBucket) {
  Histogram h;
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint64_t> dist(1000, 100000);
  std::vector<uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    values.push_back(dist(rng));
    h.add(values.back());
  }
  std::sort(values.begin(), values.end());
  HistogramCounts c;
  h.add_to(c);
  EXPECT_EQ(c.total(), values.size());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(values[static_cast<size_t>(q * (values.size() - 1))]);
    EXPECT_NEAR(c.quantile(q), exact, exact * 0.0625) << q;
  }
}

TEST(Histogram, MergeAndCountBelow) {
  HistogramCounts a, b;
  a.buckets[bucket_index(100)] = 3;
  b.buckets[bucket_index(100)] = 2;
  b.buckets[bucket_index(10000)] = 5;
  a.merge(b);
  EXPECT_EQ(a.total(), 10u);
  EXPECT_DOUBLE_EQ(a.count_below(1000), 5.0);
  EXPECT_DOUBLE_EQ(a.count_below(1'000'000), 10.0);
  EXPECT_EQ(HistogramCounts{}.quantile(0.5), 0.0);
}

TEST(Counters, ListIsConsistent) {
  std::set<std::string_view> names;
  size_t ntpq = 0;
  for (const auto& c : kCounterInfo) {
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
    EXPECT_FALSE(c.help.empty()) << c.name;
    EXPECT_FALSE(c.unit.empty()) << c.name;
    if (!c.ntpq_label.empty()) ++ntpq;
  }
  EXPECT_EQ(ntpq, 10u);  // ntpq's sysstats rows after uptime and reset
  EXPECT_EQ(kCounterInfo[index(Counter::kod_sent)].ntpq_label, "KoD responses");
}

TEST(Counters, WorkerBlocksSum) {
  WorkerCounters a, b;
  a.add(Counter::received, 3);
  b.add(Counter::received);
  b.set(Counter::rx_queue_drops, 7);
  EXPECT_EQ(a.get(Counter::received) + b.get(Counter::received), 4u);
  EXPECT_EQ(b.get(Counter::rx_queue_drops), 7u);
}

}  // namespace
}  // namespace strata::stats
