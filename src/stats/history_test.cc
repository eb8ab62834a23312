// Unit tests of the history: the tiers' means and maxima, gaps, retention, the point in
// progress, the file format and its refusals.
#include "stats/history.h"

#include <gtest/gtest.h>

#include <cmath>

namespace strata::stats {
namespace {

constexpr int64_t kT0 = 1'796'083'200;  // 2026-12-01T00:00:00Z: a day, hour and minute start

Sample with(Series s, double v) {
  Sample x = unknown_sample();
  x[series_index(s)] = v;
  return x;
}

const size_t kRequests = series_index(Series::requests);
const size_t kReplies = series_index(Series::replies);

TEST(History, SecondsMinutesAndHoursHoldMeanAndMax) {
  History h;
  // Two minutes: the first at 1..60 requests/s, the second at 100/s.
  for (int64_t i = 0; i < 120; ++i) h.record(kT0 + i, with(Series::requests, i < 60 ? double(i + 1) : 100.0));
  h.record(kT0 + 120, with(Series::requests, 7));  // the third minute begins

  const auto s = h.query({kRequests}, {1, kT0, kT0 + 120});
  ASSERT_EQ(s.points, 121u);
  EXPECT_EQ(s.start, kT0);
  EXPECT_EQ(s.mean[0][0], 1);
  EXPECT_EQ(s.mean[0][59], 60);
  EXPECT_EQ(s.mean[0][120], 7);

  const auto m = h.query({kRequests}, {60, kT0, kT0 + 120});
  ASSERT_EQ(m.points, 3u);
  EXPECT_FLOAT_EQ(m.mean[0][0], 30.5f);
  EXPECT_EQ(m.max[0][0], 60);
  EXPECT_EQ(m.mean[0][1], 100);
  EXPECT_EQ(m.mean[0][2], 7);  // in progress: the samples it has

  const auto hr = h.query({kRequests}, {3600, kT0, kT0 + 120});
  ASSERT_EQ(hr.points, 1u);
  EXPECT_NEAR(hr.mean[0][0], (30.5 * 60 + 100 * 60 + 7) / 121, 1e-3);
  EXPECT_EQ(hr.max[0][0], 100);
}

TEST(History, UnknownValuesAndGapsStayUnknown) {
  History h;
  h.record(kT0, with(Series::requests, 5));  // replies unknown
  h.record(kT0 + 10, with(Series::requests, 6));  // 1..9 never recorded (stopped)
  const auto r = h.query({kRequests, kReplies}, {1, kT0, kT0 + 10});
  ASSERT_EQ(r.points, 11u);
  EXPECT_EQ(r.mean[0][0], 5);
  EXPECT_TRUE(std::isnan(r.mean[1][0]));
  for (size_t i = 1; i < 10; ++i) EXPECT_TRUE(std::isnan(r.mean[0][i])) << i;
  EXPECT_EQ(r.mean[0][10], 6);
  // A point with some known samples averages the known ones only.
  const auto m = h.query({kRequests}, {60, kT0, kT0});
  EXPECT_EQ(m.mean[0][0], 5.5);
}

TEST(History, EachTierKeepsItsRetentionOnly) {
  History h;
  for (int64_t i = 0; i < 3600 + 100; ++i) h.record(kT0 + i, with(Series::requests, double(i)));
  const int64_t now = kT0 + 3699;
  // Asking for more than an hour at 1 s gives the last 3,600 seconds.
  const auto s = h.query({kRequests}, {1, kT0, now});
  ASSERT_EQ(s.points, 3600u);
  EXPECT_EQ(s.start, now - 3599);
  EXPECT_EQ(s.mean[0][0], 100);  // the slot of second 0 now holds second 3,600
  EXPECT_EQ(s.mean[0][3599], 3699);
  // The minutes still have the first hour.
  const auto m = h.query({kRequests}, {60, kT0, now});
  EXPECT_FLOAT_EQ(m.mean[0][0], 29.5f);
  // Auto step: the finest tier that covers the range.
  EXPECT_EQ(History::auto_step(now - 600, now), 1);
  EXPECT_EQ(History::auto_step(now - 86400, now), 60);
  EXPECT_EQ(History::auto_step(now - 30 * 86400, now), 3600);
  EXPECT_THROW(h.query({kRequests}, {10, kT0, now}), std::invalid_argument);
  EXPECT_THROW(h.query({kRequests}, {1, now, kT0}), std::invalid_argument);
}

TEST(History, ASlotLeftFromAnEarlierLapIsNotShownAsNow) {
  History h;
  h.record(kT0, with(Series::requests, 1));
  h.record(kT0 + 3600 * 2, with(Series::requests, 2));  // two hours later: same 1 s slot lap
  const auto r = h.query({kRequests}, {1, kT0 + 3600, kT0 + 3600 * 2});
  EXPECT_EQ(r.points, 3600u);
  for (size_t i = 0; i + 1 < r.points; ++i) ASSERT_TRUE(std::isnan(r.mean[0][i])) << i;
  EXPECT_EQ(r.mean[0][r.points - 1], 2);
}

TEST(History, RoundTripsThroughItsFile) {
  History h;
  for (int64_t i = 0; i < 200; ++i) {
    Sample x = unknown_sample();
    x[kRequests] = double(i);
    x[kReplies] = double(2 * i);
    h.record(kT0 + i, x);
  }
  const std::string file = h.serialize();
  History back;
  std::string error;
  ASSERT_TRUE(back.parse(file, error)) << error;
  EXPECT_EQ(back.last_second(), kT0 + 199);
  for (int64_t step : {1, 60, 3600}) {
    const auto a = h.query({kRequests, kReplies}, {step, kT0, kT0 + 199});
    const auto b = back.query({kRequests, kReplies}, {step, kT0, kT0 + 199});
    ASSERT_EQ(a.points, b.points);
    for (size_t k = 0; k < 2; ++k)
      for (size_t i = 0; i < a.points; ++i) {
        EXPECT_EQ(a.mean[k][i], b.mean[k][i]);
        EXPECT_EQ(a.max[k][i], b.max[k][i]);
      }
  }
  // The point in progress carries on after the restart.
  back.record(kT0 + 200, with(Series::requests, 200));
  h.record(kT0 + 200, with(Series::requests, 200));
  EXPECT_EQ(h.query({kRequests}, {60, kT0 + 180, kT0 + 200}).mean[0][0],
            back.query({kRequests}, {60, kT0 + 180, kT0 + 200}).mean[0][0]);
  EXPECT_GT(h.memory_bytes(), 3'000'000u);
  EXPECT_LT(h.memory_bytes(), 5'000'000u);
}

TEST(History, RefusesADamagedFileWithAReason) {
  History h;
  h.record(kT0, with(Series::requests, 1));
  const std::string file = h.serialize();
  History other;
  std::string error;
  EXPECT_FALSE(other.parse("", error));
  EXPECT_EQ(error, "not a strata history file");
  EXPECT_FALSE(other.parse(file.substr(0, file.size() / 2), error));
  EXPECT_NE(error.find("damaged"), std::string::npos) << error;
  std::string flipped = file;
  flipped[file.size() / 3] ^= 0x40;
  EXPECT_FALSE(other.parse(flipped, error));
  EXPECT_NE(error.find("checksum"), std::string::npos) << error;
  // Refused: nothing of it was taken.
  EXPECT_TRUE(std::isnan(other.query({kRequests}, {1, kT0, kT0}).mean[0][0]));
}

}  // namespace
}  // namespace strata::stats
