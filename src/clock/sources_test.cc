// Unit tests of the time-state mapping from each source, and of the seqlock cell.
#include "clock/sources.h"

#include <gtest/gtest.h>
#include <sys/timex.h>

#include <atomic>
#include <thread>

namespace strata::clock {
namespace {

base::RealTime at(double s) {
  return base::RealTime{base::Nanos{static_cast<int64_t>(s * 1e9)}};
}

TEST(ReferenceId, ParsesAddressesAndNames) {
  EXPECT_EQ(parse_reference_id("192.0.2.1"), 0xC0000201u);
  EXPECT_EQ(parse_reference_id("GPS"), 0x47505300u);
  EXPECT_EQ(parse_reference_id("PPS1"), 0x50505331u);
  EXPECT_FALSE(parse_reference_id(""));
  EXPECT_FALSE(parse_reference_id("TOOLONG"));
  EXPECT_FALSE(parse_reference_id("a b"));
  EXPECT_FALSE(parse_reference_id("::1"));
  EXPECT_EQ(format_reference_id(0xC0000201u, 2), "192.0.2.1");
  EXPECT_EQ(format_reference_id(0x47505300u, 1), "GPS");
  EXPECT_EQ(format_reference_id(0x52415445u, 0), "RATE");
}

TEST(KernelSource, SynchronisedClock) {
  Options o;
  o.stratum = 3;
  o.reference_id = 0x0A000001;
  o.root_delay = 0.002;
  KernelStatus k{TIME_OK, STA_PLL, 1500, 100};
  const TimeState s = state_from_kernel(k, o, -24, base::NtpTimestamp{77}, at(100));
  EXPECT_TRUE(s.synchronised);
  EXPECT_EQ(s.leap, wire::Leap::kNone);
  EXPECT_EQ(s.stratum, 3);
  EXPECT_EQ(s.reference_id, 0x0A000001u);
  EXPECT_EQ(s.reference.raw, 77u);
  EXPECT_DOUBLE_EQ(s.root_delay, 0.002);
  EXPECT_DOUBLE_EQ(s.root_dispersion, 0.0015);  // maxerror
  EXPECT_DOUBLE_EQ(s.dispersion_rate, kKernelMaxErrorRate);
}

TEST(KernelSource, UnsyncAndLeapBits) {
  Options o;
  EXPECT_FALSE(state_from_kernel({TIME_ERROR, STA_UNSYNC, 16000000, 0}, o, -20, {}, at(1)).synchronised);
  EXPECT_FALSE(state_from_kernel({TIME_OK, STA_UNSYNC, 100, 0}, o, -20, {}, at(1)).synchronised);
  EXPECT_FALSE(state_from_kernel({TIME_OK, 0, 16000000, 0}, o, -20, {}, at(1)).synchronised);
  EXPECT_EQ(state_from_kernel({TIME_INS, STA_INS, 100, 0}, o, -20, {}, at(1)).leap, wire::Leap::kInsert);
  EXPECT_EQ(state_from_kernel({TIME_DEL, STA_DEL, 100, 0}, o, -20, {}, at(1)).leap, wire::Leap::kDelete);
}

TEST(LocalSource, ServesConfiguredStratum) {
  Options o;
  o.stratum = 10;
  o.reference_id = 0x7F7F0101;
  o.root_dispersion = 0.01;
  const TimeState s = state_from_local(o, -22, at(5));
  EXPECT_TRUE(s.synchronised);
  EXPECT_EQ(s.stratum, 10);
  EXPECT_EQ(s.leap, wire::Leap::kNone);
  EXPECT_DOUBLE_EQ(s.root_dispersion, 0.01);
  EXPECT_EQ(s.reference, base::to_ntp(at(5)));
}

NtpSample mirror_sample(uint8_t stratum, wire::Leap leap, double offset) {
  NtpSample m;
  m.sent = at(1000.0);
  m.received = at(1000.0002);  // 200 us round trip
  m.reply.leap = leap;
  m.reply.mode = wire::Mode::kServer;
  m.reply.stratum = stratum;
  m.reply.reference_id = 0xC0000201;
  m.reply.reference = base::to_ntp(at(990));
  m.reply.root_delay = base::NtpShort::from_seconds(0.01);
  m.reply.root_dispersion = base::NtpShort::from_seconds(0.02);
  m.reply.receive = base::to_ntp(at(1000.00005 + offset));
  m.reply.transmit = base::to_ntp(at(1000.00015 + offset));  // 100 us in the server
  return m;
}

TEST(MirrorSource, CopiesServerStateAndWidensDispersion) {
  const TimeState s = state_from_mirror(mirror_sample(2, wire::Leap::kInsert, 0.001), -23);
  EXPECT_TRUE(s.synchronised);
  EXPECT_EQ(s.stratum, 2);
  EXPECT_EQ(s.leap, wire::Leap::kInsert);
  EXPECT_EQ(s.reference_id, 0xC0000201u);
  EXPECT_NEAR(s.root_delay, 0.01, 1e-4);
  // root dispersion 0.02 + |offset| 0.001 + delay/2 0.00005
  EXPECT_NEAR(s.root_dispersion, 0.02105, 2e-5);
  EXPECT_DOUBLE_EQ(s.dispersion_rate, kPhi);
  const OffsetDelay od = offset_delay(mirror_sample(2, wire::Leap::kNone, 0.001));
  EXPECT_NEAR(od.offset, 0.001, 1e-8);
  EXPECT_NEAR(od.delay, 0.0001, 1e-8);
}

TEST(MirrorSource, UnsynchronisedServer) {
  EXPECT_FALSE(state_from_mirror(mirror_sample(16, wire::Leap::kNone, 0), -20).synchronised);
  EXPECT_FALSE(state_from_mirror(mirror_sample(0, wire::Leap::kNone, 0), -20).synchronised);
  EXPECT_FALSE(state_from_mirror(mirror_sample(3, wire::Leap::kUnsynchronised, 0), -20).synchronised);
  // Usable replies: the server's own unsynchronised state is served, not refused.
  EXPECT_EQ(mirror_reply_problem(mirror_sample(16, wire::Leap::kNone, 0)), "");
  EXPECT_EQ(mirror_reply_problem(mirror_sample(3, wire::Leap::kUnsynchronised, 0)), "");
}

TEST(MirrorSource, OurClockFarFromTheServersIsUnsynchronised) {
  // 15.9 s away: root distance 0.005 + 0.02 + 15.9 + ... < 16: still served.
  EXPECT_TRUE(state_from_mirror(mirror_sample(2, wire::Leap::kNone, 15.9), -20).synchronised);
  const TimeState far = state_from_mirror(mirror_sample(2, wire::Leap::kNone, 16), -20);
  EXPECT_FALSE(far.synchronised);
  // A day away: the dispersion is capped so that it fits the 16.16 field.
  const TimeState day = state_from_mirror(mirror_sample(2, wire::Leap::kNone, 86400), -20);
  EXPECT_FALSE(day.synchronised);
  EXPECT_LE(day.root_dispersion, 2 * kMaxRootDistance);
}

TEST(MirrorSource, RefusesKissOfDeathAndMalformedReplies) {
  NtpSample kod = mirror_sample(0, wire::Leap::kUnsynchronised, 0);
  kod.reply.reference_id = 0x52415445;  // RATE
  EXPECT_EQ(mirror_reply_problem(kod), "kiss-o'-death RATE");
  kod.reply.reference_id = 0x00FF4142;
  EXPECT_EQ(mirror_reply_problem(kod), "kiss-o'-death ??AB");
  NtpSample v = mirror_sample(2, wire::Leap::kNone, 0);
  v.reply.version = 0;
  EXPECT_EQ(mirror_reply_problem(v), "reply of version 0");
  v.reply.version = 7;
  EXPECT_EQ(mirror_reply_problem(v), "reply of version 7");
  NtpSample z = mirror_sample(2, wire::Leap::kNone, 0);
  z.reply.transmit = {};
  EXPECT_EQ(mirror_reply_problem(z), "reply with a zero timestamp");
  z = mirror_sample(2, wire::Leap::kNone, 0);
  z.reply.receive = {};
  EXPECT_EQ(mirror_reply_problem(z), "reply with a zero timestamp");
  NtpSample back = mirror_sample(2, wire::Leap::kNone, 0);
  back.reply.transmit = base::to_ntp(at(999));
  EXPECT_EQ(mirror_reply_problem(back), "reply sent before it was received");
  NtpSample big = mirror_sample(2, wire::Leap::kNone, 0);
  big.reply.root_dispersion = base::NtpShort::from_seconds(16);
  EXPECT_NE(mirror_reply_problem(big).find("root dispersion 16.000 s"), std::string::npos);
  big = mirror_sample(2, wire::Leap::kNone, 0);
  big.reply.root_delay = base::NtpShort::from_seconds(20);
  EXPECT_NE(mirror_reply_problem(big).find("root delay 20.000 s"), std::string::npos);
  EXPECT_EQ(mirror_reply_problem(mirror_sample(2, wire::Leap::kInsert, 0.5)), "");
}

TEST(ServerInfo, UnsynchronisedIsLeap3Stratum16AndDispersionGrows) {
  TimeState s;
  s.synchronised = true;
  s.leap = wire::Leap::kNone;
  s.stratum = 2;
  s.root_dispersion = 0.001;
  s.dispersion_rate = kPhi;
  s.as_of = at(100);
  wire::ServerInfo i = server_info(s, at(1100));  // 1000 s later: + 15 ms
  EXPECT_EQ(i.stratum, 2);
  EXPECT_NEAR(i.root_dispersion.to_seconds(), 0.016, 1e-4);
  s.synchronised = false;
  i = server_info(s, at(100));
  EXPECT_EQ(i.leap, wire::Leap::kUnsynchronised);
  EXPECT_EQ(i.stratum, wire::kStratumUnsynchronised);
}

TEST(Precision, MeasuredValueIsPlausible) {
  const int8_t p = measure_precision();
  EXPECT_LE(p, -10);  // better than a millisecond
  EXPECT_GE(p, -30);
}

TEST(TimeStateCell, ReadersNeverSeeATornState) {
  TimeStateCell cell;
  TimeState first;
  first.stratum = 0;  // consistent with updates == 0
  cell.store(first);
  std::atomic<bool> done{false};
  std::atomic<bool> reading{false};
  std::thread writer([&] {
    // Writes only once the reader is reading, so the two overlap however they are scheduled.
    while (!reading.load()) std::this_thread::yield();
    for (uint32_t i = 1; i < 200000; ++i) {
      TimeState s;
      s.reference_id = i;
      s.updates = i;
      s.root_delay = i;
      s.stratum = static_cast<uint8_t>(i);
      cell.store(s);
    }
    done = true;
  });
  uint64_t reads = 0;
  reading = true;
  while (reads == 0 || !done) {
    const TimeState s = cell.load();
    ASSERT_EQ(s.reference_id, s.updates);
    ASSERT_EQ(s.root_delay, static_cast<double>(s.updates));
    ASSERT_EQ(s.stratum, static_cast<uint8_t>(s.updates));
    ++reads;
  }
  writer.join();
  EXPECT_GT(reads, 0u);
}

}  // namespace
}  // namespace strata::clock
