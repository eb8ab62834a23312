// Tests of the worker loop over the in-memory backend: replies, late transmit stamps,
// counters, byte accounting, processing-time histogram and send failures.
#include "server/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "base/bytes.h"
#include "io/memory_backend.h"
#include "wire/packet.h"

namespace strata::server {
namespace {

using stats::Counter;

io::MemoryBackend::Datagram client_request(const char* from, base::RealTime rx,
                                           uint8_t version = 4) {
  io::MemoryBackend::Datagram d;
  d.bytes.assign(48, 0);
  d.bytes[0] = static_cast<uint8_t>(version << 3 | 3);
  base::store_be64(&d.bytes[40], 0xABCDEF0123456789ULL);
  d.peer = *base::Endpoint::parse(from, std::nullopt);
  d.local = *base::IpAddress::parse(d.peer.address.family == base::Family::kV4 ? "192.0.2.10"
                                                                               : "2001:db8::10");
  d.rx_time = rx;
  return d;
}

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest() {
    clock::TimeState s;
    s.synchronised = true;
    s.leap = wire::Leap::kNone;
    s.stratum = 3;
    s.precision = -20;
    s.as_of = base::now_real();
    cell.store(s);
  }
  io::MemoryBackend backend;
  clock::TimeStateCell cell;
  WorkerStats stats;
  Worker worker{backend, cell, stats, WorkerOptions{}};
};

TEST_F(WorkerTest, AnswersABatchAndCountsIt) {
  const base::RealTime rx = base::now_real();
  backend.inject(client_request("198.51.100.7:40001", rx));
  backend.inject(client_request("[2001:db8::7]:40002", rx, 3));
  auto junk = client_request("198.51.100.8:40003", rx);
  junk.bytes.resize(20);
  backend.inject(junk);
  EXPECT_EQ(worker.run_once(std::chrono::milliseconds(0)), 3u);
  ASSERT_EQ(backend.sent().size(), 2u);
  for (const auto& reply : backend.sent()) {
    const wire::Header h = wire::decode_header(reply.bytes);
    EXPECT_EQ(h.mode, wire::Mode::kServer);
    EXPECT_EQ(h.origin.raw, 0xABCDEF0123456789ULL);
    // T2 is the kernel receive time; T3 was stamped later, never before T2.
    EXPECT_LT(std::abs(base::ntp_diff_seconds(h.receive, base::to_ntp(rx))), 2e-6);
    EXPECT_GE(base::ntp_diff_raw(h.transmit, h.receive), 0);
    EXPECT_LT(base::ntp_diff_seconds(h.transmit, h.receive), 1.0);
    EXPECT_FALSE(reply.local.is_unspecified());  // sent from the address it hit
  }
  EXPECT_EQ(backend.sent()[0].peer.to_string(), "198.51.100.7:40001");
  EXPECT_EQ(wire::decode_header(backend.sent()[1].bytes).version, 3);
  const auto& c = stats.counters;
  EXPECT_EQ(c.get(Counter::received), 3u);
  EXPECT_EQ(c.get(Counter::processed), 2u);
  EXPECT_EQ(c.get(Counter::responses_sent), 2u);
  EXPECT_EQ(c.get(Counter::bad_format), 1u);
  EXPECT_EQ(c.get(Counter::received_v4), 2u);
  EXPECT_EQ(c.get(Counter::received_v6), 1u);
  EXPECT_EQ(c.get(Counter::bytes_in_v4), 48u + 28 + 20 + 28);
  EXPECT_EQ(c.get(Counter::bytes_in_v6), 48u + 48);
  EXPECT_EQ(c.get(Counter::bytes_out_v4), 48u + 28);
  EXPECT_EQ(c.get(Counter::bytes_out_v6), 48u + 48);
  stats::HistogramCounts h;
  stats.processing_ns.add_to(h);
  EXPECT_EQ(h.total(), 2u);
}

TEST_F(WorkerTest, SendFailuresAreCounted) {
  backend.fail_sends(true);
  backend.set_rx_queue_drops(5);
  backend.inject(client_request("198.51.100.7:40001", base::now_real()));
  worker.run_once(std::chrono::milliseconds(0));
  EXPECT_EQ(stats.counters.get(Counter::processed), 1u);
  EXPECT_EQ(stats.counters.get(Counter::responses_sent), 0u);
  EXPECT_EQ(stats.counters.get(Counter::send_errors), 1u);
  EXPECT_EQ(stats.counters.get(Counter::rx_queue_drops), 5u);
}

TEST_F(WorkerTest, WithoutKernelTimestampUsesBatchTime) {
  auto d = client_request("198.51.100.7:40001", base::RealTime{});
  d.kernel_time = false;
  backend.inject(d);
  worker.run_once(std::chrono::milliseconds(0));
  ASSERT_EQ(backend.sent().size(), 1u);
  const wire::Header h = wire::decode_header(backend.sent()[0].bytes);
  EXPECT_LT(std::abs(base::ntp_diff_seconds(h.receive, base::to_ntp(base::now_real()))), 1.0);
  stats::HistogramCounts hist;
  stats.processing_ns.add_to(hist);
  EXPECT_EQ(hist.total(), 0u);  // no kernel time, no processing-time sample
}

TEST(FuzzBelowPrecision, KeepsSignificantBits) {
  const base::NtpTimestamp t{0x1234567890ABCDEFULL};
  // precision -20: the low 12 bits of the fraction are noise.
  const auto a = fuzz_below_precision(t, -20, 0);
  const auto b = fuzz_below_precision(t, -20, ~uint64_t{0});
  EXPECT_EQ(a.raw, 0x1234567890ABC000ULL);
  EXPECT_EQ(b.raw, 0x1234567890ABCFFFULL);
  EXPECT_EQ(fuzz_below_precision(t, -32, 0).raw, t.raw);
}


namespace strata::server {
namespace {

TEST(WorkerRun, BusyPollingLoopServesAndStops) {
  io::MemoryBackend backend;
  clock::TimeStateCell cell;
  WorkerStats stats;
  WorkerOptions options;
  options.busy_poll = std::chrono::milliseconds(5);
  Worker worker(backend, cell, stats, options);
  backend.inject(client_request("198.51.100.7:40001", base::now_real()));
  std::atomic<bool> stop{false};
  std::thread t([&] { worker.run(stop); });
  for (int i = 0; i < 1000 && stats.counters.get(stats::Counter::received) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop = true;
  t.join();
  EXPECT_EQ(stats.counters.get(stats::Counter::received), 1u);
  EXPECT_EQ(backend.sent().size(), 1u);
}

}  // namespace
}  // namespace strata::server

namespace strata::server {
namespace {

class NoSources final : public mode6::Sources {
 public:
  mode6::SystemView system() override {
    mode6::SystemView v;
    v.time.synchronised = true;
    v.time.stratum = 3;
    return v;
  }
  void client_entries(std::vector<mode6::MruEntry>&) override {}
};

// Mode 6 leaves the worker through its ring; the control service answers it over the same
// backend, from the address the request hit, and the worker's own replies are untouched.
TEST(WorkerControl, ModeSixGoesThroughTheControlService) {
  io::MemoryBackend backend;
  clock::TimeStateCell cell;
  WorkerStats stats, control_stats;
  clients::TrackerOptions topts;
  topts.table.capacity = 64;
  topts.prefix_capacity = 64;
  clients::Tracker tracker(topts);
  RulesCell rules(std::make_unique<Rules>(), 2);
  ControlQueue queue(1);
  WorkerOptions options;
  options.tracker = &tracker;
  options.rules = &rules;
  options.reader = 0;
  options.control = &queue;
  Worker worker(backend, cell, stats, options);
  NoSources sources;
  ControlService service(queue, {&backend}, rules, 1, {}, sources, control_stats.counters);

  auto request = [](const char* from, uint8_t opcode, std::string_view data) {
    io::MemoryBackend::Datagram d;
    d.bytes.assign((12 + data.size() + 3) / 4 * 4, 0);
    d.bytes[0] = 2 << 3 | 6;
    d.bytes[1] = opcode;
    d.bytes[3] = 9;
    d.bytes[11] = static_cast<uint8_t>(data.size());
    for (size_t i = 0; i < data.size(); ++i) d.bytes[12 + i] = static_cast<uint8_t>(data[i]);
    d.peer = *base::Endpoint::parse(from, std::nullopt);
    d.local = *base::IpAddress::parse("127.0.0.5");
    d.rx_time = base::now_real();
    return d;
  };
  backend.inject(request("127.0.0.1:40000", 2, "stratum"));
  backend.inject(request("203.0.113.1:40000", 2, "stratum"));  // noquery by default
  EXPECT_EQ(worker.run_once(std::chrono::milliseconds(0)), 2u);
  EXPECT_TRUE(backend.sent().empty());  // nothing from the worker itself
  EXPECT_EQ(stats.counters.get(Counter::drop_mode_control), 1u);
  EXPECT_EQ(service.run_once(0), 1u);
  ASSERT_EQ(backend.sent().size(), 1u);
  const auto& reply = backend.sent()[0];
  EXPECT_EQ(reply.peer.to_string(), "127.0.0.1:40000");
  EXPECT_EQ(reply.local.to_string(), "127.0.0.5");
  EXPECT_EQ(reply.bytes[1], 0x80 | 2);
  const std::string text(reply.bytes.begin() + 12, reply.bytes.begin() + 12 + reply.bytes[11]);
  EXPECT_EQ(text, "stratum=3\r\n");
  EXPECT_EQ(control_stats.counters.get(Counter::control_requests), 1u);
  EXPECT_EQ(control_stats.counters.get(Counter::control_responses), 1u);
}

// Found by the security review (issue 12, finding 4): a reader slower than publish()'s wait
// made the old rule set leak for good (4-5 MB per reload with 400,000 rules).
TEST(RulesCellTest, ASlowReaderDelaysButDoesNotLeakOldSets) {
  RulesCell cell(std::make_unique<Rules>(), 2);
  cell.acquire(0);
  cell.acquire(1);
  for (int i = 0; i < 5; ++i) {
    cell.acquire(0);  // reader 1 is busy elsewhere
    EXPECT_FALSE(cell.publish(std::make_unique<Rules>(), std::chrono::milliseconds(1)));
  }
  EXPECT_EQ(cell.held(), 6u);  // the current set and five reader 1 might still hold
  const Rules* now = cell.acquire(1);
  cell.acquire(0);
  cell.reclaim();
  EXPECT_EQ(cell.held(), 1u);
  EXPECT_EQ(cell.current(), now);
  // With both readers moving, a publish frees what it replaced at once.
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      cell.acquire(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::thread other([&] {
    while (!stop) {
      cell.acquire(0);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  EXPECT_TRUE(cell.publish(std::make_unique<Rules>(), std::chrono::seconds(5)));
  stop = true;
  reader.join();
  other.join();
  EXPECT_EQ(cell.held(), 1u);
}

// A reader between batches (waiting for packets) holds nothing: a publish does not wait for
// it (reloads took a worker's 250 ms receive timeout), and its next batch gets the new set.
TEST(RulesCellTest, IdleReadersDoNotDelayAPublish) {
  RulesCell cell(std::make_unique<Rules>(), 2);
  { const RulesHold a(cell, 0); }
  { const RulesHold b(cell, 1); }
  for (int i = 0; i < 100; ++i) {
    auto next = std::make_unique<Rules>();
    const Rules* expected = next.get();
    EXPECT_TRUE(cell.publish(std::move(next), std::chrono::milliseconds(0)));
    EXPECT_EQ(cell.held(), 1u);  // the replaced set is freed at once
    const RulesHold hold(cell, i % 2);
    EXPECT_EQ(&*hold, expected);
  }
  // One reader mid-batch: the publish waits for that one only.
  const RulesHold busy(cell, 0);
  EXPECT_FALSE(cell.publish(std::make_unique<Rules>(), std::chrono::milliseconds(1)));
  EXPECT_EQ(cell.held(), 2u);
}

}  // namespace
}  // namespace strata::server

// Interleaved mode, as a chrony `xleave` client drives it: its first request has a zero
// origin; each next one carries our last receive timestamp as origin and its own receive and
// transmit times. The third reply is the first interleaved one.
class InterleavedWorkerTest : public WorkerTest {
 protected:
  InterleavedWorkerTest() {
    WorkerOptions o;
    o.interleave = &table;
    iworker.emplace(backend, cell, stats, o);
  }
  // One request from `from` with the given origin/receive/transmit, received at `rx`.
  wire::Header exchange(const char* from, uint64_t origin, uint64_t receive, uint64_t transmit,
                        base::RealTime rx, bool* asked_tx = nullptr) {
    auto d = client_request(from, rx);
    d.bytes[0] |= 0xC0;  // LI 3: what an unsynchronised chronyd sends
    base::store_be64(&d.bytes[24], origin);
    base::store_be64(&d.bytes[32], receive);
    base::store_be64(&d.bytes[40], transmit);
    backend.clear_sent();
    backend.inject(d);
    EXPECT_EQ(iworker->run_once(std::chrono::milliseconds(0)), 1u);
    EXPECT_EQ(backend.sent().size(), 1u);
    if (asked_tx) *asked_tx = backend.sent().at(0).want_tx_time;
    return wire::decode_header(backend.sent().at(0).bytes);
  }
  clients::InterleaveTable table{1024};
  std::optional<Worker> iworker;
};

TEST_F(InterleavedWorkerTest, ThirdReplyCarriesTheKernelTransmitTimeOfTheSecond) {
  backend.stamp_transmits(true, std::chrono::microseconds(40));
  const base::RealTime t0 = base::now_real();
  // 1: basic client start: zero origin. Basic reply, marked, nothing held.
  bool asked = true;
  const wire::Header r1 = exchange("198.51.100.7:40001", 0, 0, 0x1111111111111110ULL, t0, &asked);
  EXPECT_EQ(r1.receive.raw & 1, 1u);
  EXPECT_EQ(r1.transmit.raw & 1, 0u);
  EXPECT_GT(base::ntp_diff_raw(r1.transmit, r1.receive), 0);
  EXPECT_FALSE(asked);
  EXPECT_EQ(table.held(), 0u);
  // 2: interleaved request, origin = r1's receive: nothing held for it, so basic (origin = the
  // request's transmit), but this reply's receive is saved and its TX timestamp asked for.
  const base::RealTime t1 = t0 + std::chrono::seconds(1);
  const wire::Header r2 = exchange("198.51.100.7:40002", r1.receive.raw, 0x2222222222222221ULL,
                                   0x2222222222222230ULL, t1, &asked);
  EXPECT_TRUE(asked);
  EXPECT_EQ(r2.origin.raw, 0x2222222222222230ULL);
  EXPECT_EQ(table.held(), 1u);
  EXPECT_EQ(stats.counters.get(Counter::interleaved_basic), 1u);
  // 3: origin = r2's receive, from another source port: interleaved. origin = the request's
  // receive field, receive = now, transmit = r2's kernel transmit time (t1 + 40 us).
  const base::RealTime t2 = t1 + std::chrono::seconds(1);
  const wire::Header r3 = exchange("198.51.100.7:40003", r2.receive.raw, 0x3333333333333331ULL,
                                   0x3333333333333340ULL, t2, &asked);
  EXPECT_TRUE(asked);
  EXPECT_EQ(r3.origin.raw, 0x3333333333333331ULL);
  EXPECT_LT(std::abs(base::ntp_diff_seconds(r3.receive, base::to_ntp(t2))), 2e-6);
  EXPECT_LT(std::abs(base::ntp_diff_seconds(r3.transmit, base::to_ntp(t1 + std::chrono::microseconds(40)))), 2e-6);
  EXPECT_EQ(r3.transmit.raw & 1, 0u);
  const auto& c = stats.counters;
  EXPECT_EQ(c.get(Counter::interleaved_replies), 1u);
  EXPECT_EQ(c.get(Counter::tx_timestamps_kernel), 1u);
  EXPECT_EQ(c.get(Counter::tx_timestamps_missing), 0u);
  // The entry served once: the same origin again gets a basic reply.
  const wire::Header again = exchange("198.51.100.7:40004", r2.receive.raw, 0x4444444444444441ULL,
                                      0x4444444444444450ULL, t2 + std::chrono::seconds(1));
  EXPECT_EQ(again.origin.raw, 0x4444444444444450ULL);
  EXPECT_EQ(c.get(Counter::interleaved_replies), 1u);
  EXPECT_EQ(c.get(Counter::interleaved_basic), 2u);
}

TEST_F(InterleavedWorkerTest, WithoutKernelTimestampsTheDaemonsServesAndIsCounted) {
  const base::RealTime t0 = base::now_real();
  const wire::Header r1 = exchange("198.51.100.9:40001", 0x1235, 0x2221, 0x2230, t0);
  const wire::Header r2 = exchange("198.51.100.9:40001", r1.receive.raw, 0x3331, 0x3340,
                                   t0 + std::chrono::seconds(1));
  EXPECT_EQ(r2.origin.raw, 0x3331u);
  EXPECT_EQ(r2.transmit.raw, r1.transmit.raw);  // the daemon's T3 of r1
  EXPECT_EQ(stats.counters.get(Counter::interleaved_replies), 1u);
  EXPECT_EQ(stats.counters.get(Counter::tx_timestamps_missing), 1u);
}

TEST_F(InterleavedWorkerTest, OnlyTheClientItWasSentToAndOnlyInterleavedRequests) {
  backend.stamp_transmits(true);
  const base::RealTime t0 = base::now_real();
  const wire::Header r1 = exchange("198.51.100.7:40001", 0x1235, 0x2221, 0x2230, t0);
  // Another address echoing r1's receive timestamp: basic.
  const wire::Header other = exchange("198.51.100.8:40001", r1.receive.raw, 0x3331, 0x3340, t0);
  EXPECT_EQ(other.origin.raw, 0x3340u);
  // receive == transmit (chrony's basic-mode request) or an even origin: not looked up.
  const wire::Header same = exchange("198.51.100.7:40001", r1.receive.raw, 0x5550, 0x5550, t0);
  EXPECT_EQ(same.origin.raw, 0x5550u);
  const wire::Header even = exchange("198.51.100.7:40001", r1.receive.raw & ~1ULL, 0x6661, 0x6670, t0);
  EXPECT_EQ(even.origin.raw, 0x6670u);
  // NTPv3 never.
  auto v3 = client_request("198.51.100.7:40001", t0, 3);
  base::store_be64(&v3.bytes[24], r1.receive.raw);
  base::store_be64(&v3.bytes[32], 0x7771);
  backend.clear_sent();
  backend.inject(v3);
  iworker->run_once(std::chrono::milliseconds(0));
  EXPECT_FALSE(backend.sent().at(0).want_tx_time);
  EXPECT_EQ(wire::decode_header(backend.sent().at(0).bytes).origin.raw, 0xABCDEF0123456789ULL);
  // The right client still gets it.
  const wire::Header r = exchange("198.51.100.7:40009", r1.receive.raw, 0x8881, 0x8890, t0);
  EXPECT_EQ(r.origin.raw, 0x8881u);
  EXPECT_EQ(stats.counters.get(Counter::interleaved_replies), 1u);
}

TEST_F(InterleavedWorkerTest, AReplyNotSentIsForgotten) {
  const base::RealTime t0 = base::now_real();
  backend.fail_sends(true);
  auto d = client_request("198.51.100.7:40001", t0);
  base::store_be64(&d.bytes[24], 0x1235);
  base::store_be64(&d.bytes[32], 0x2221);
  backend.inject(d);
  iworker->run_once(std::chrono::milliseconds(0));
  EXPECT_EQ(table.held(), 0u);
  EXPECT_EQ(stats.counters.get(Counter::send_errors), 1u);
}

TEST_F(WorkerTest, BasicModeDoesNotMarkOrHold) {
  // Without a table, replies are not marked and nothing asks for transmit timestamps.
  auto d = client_request("198.51.100.7:40001", base::now_real());
  base::store_be64(&d.bytes[24], 0x1235);
  base::store_be64(&d.bytes[32], 0x2221);
  size_t odd_receives = 0;
  for (int i = 0; i < 64; ++i) {
    backend.clear_sent();
    backend.inject(d);
    worker.run_once(std::chrono::milliseconds(0));
    EXPECT_FALSE(backend.sent().at(0).want_tx_time);
    odd_receives += wire::decode_header(backend.sent().at(0).bytes).receive.raw & 1;
  }
  EXPECT_GT(odd_receives, 0u);
  EXPECT_LT(odd_receives, 64u);  // random noise bits, not a mark
}

}  // namespace
}  // namespace strata::server
