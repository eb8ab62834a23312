// Microbenchmarks of the client table and rate limiter: ns per request (record + limit
// decision + unique-client sketches + top talkers) with 10^3, 10^6 and 10^7 distinct clients
// already in the table, clients drawn at random (the table does not fit any cache at 10^6
// and up: this is the miss cost), one request at a time and in prepared receive batches, and
// the access-rule lookup with 100,000 rules.
#include <benchmark/benchmark.h>

#include <array>
#include <memory>
#include <random>

#include "clients/block_meter.h"
#include "clients/tracker.h"
#include "policy/blocks.h"
#include "policy/policy.h"

namespace strata::clients {
namespace {

// Uniform draws from [0, n) without a division (xorshift64* and a multiply-shift).
class Draw {
 public:
  explicit Draw(uint32_t n) : n_(n) {}
  uint32_t operator()() {
    x_ ^= x_ >> 12;
    x_ ^= x_ << 25;
    x_ ^= x_ >> 27;
    return static_cast<uint32_t>(((x_ * 0x2545F4914F6CDD1DULL) >> 32) * n_ >> 32);
  }

 private:
  uint64_t x_ = 0x9e3779b97f4a7c15ULL;
  uint64_t n_;
};

const base::IpAddress kLocal = base::IpAddress::v4(0xc0000201u);

// A tracker whose tables hold n clients (each seen once, `now` advanced 1 us a request),
// with limits that pass everything. Addresses spread over the IPv4 space, as real clients
// are: client i is i * 2654435761.
std::unique_ptr<Tracker> filled_tracker(uint32_t n, int64_t& now) {
  TrackerOptions o;
  o.table.capacity = n + n / 8;
  o.table.mindepth = 0;
  o.prefix_capacity = n + n / 8;
  o.seed = 7;
  o.limits.min_spacing_s = 0;
  auto t = std::make_unique<Tracker>(o);
  for (uint32_t i = 0; i < n; ++i) t->observe(base::IpAddress::v4(i * 2654435761u), kLocal, 3, 4, now += 1000);
  return t;
}

void BM_TrackerObserve(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  int64_t now = 1'000'000'000'000'000'000;
  const auto tracker = filled_tracker(n, now);
  Tracker& t = *tracker;
  // Each request from a client drawn at random from all n, its address computed, not read
  // from a table (a random read of `clients` per request would add a cache miss of the
  // benchmark's own: a worker reads the address from the packet it just received).
  Draw draw(n);
  for (auto _ : state) {
    const Observation obs = t.observe(base::IpAddress::v4(draw() * 2654435761u), kLocal, 3, 4, now += 1000);
    benchmark::DoNotOptimize(obs);
  }
  state.counters["clients"] = static_cast<double>(t.table().size());
  state.counters["MiB"] = static_cast<double>(t.table().memory_bytes() + t.prefixes().memory_bytes()) / (1 << 20);
}
BENCHMARK(BM_TrackerObserve)->Arg(1000)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kNanosecond);

// The same requests as the worker sees them: in receive batches of 64, each batch prepared
// (Tracker::prepare: its cache misses issued together) before its requests are observed.
// "per_request" is the figure to read (one iteration is one batch).
void BM_TrackerObserveBatch(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  constexpr size_t kBatch = 64;
  int64_t now = 1'000'000'000'000'000'000;
  const auto tracker = filled_tracker(n, now);
  Tracker& t = *tracker;
  Draw draw(n);
  const LimitParams& limits = t.options().limits;
  std::array<base::IpAddress, kBatch> batch;  // the receive buffers: in the cache
  for (auto _ : state) {
    for (auto& a : batch) a = base::IpAddress::v4(draw() * 2654435761u);
    t.prepare(kBatch, [&](size_t j) -> const base::IpAddress& { return batch[j]; }, limits);
    for (size_t j = 0; j < kBatch; ++j) {
      const Observation obs = t.observe(batch[j], kLocal, 3, 4, now += 1000);
      benchmark::DoNotOptimize(obs);
    }
  }
  state.counters["per_request"] = benchmark::Counter(static_cast<double>(state.iterations() * kBatch),
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["clients"] = static_cast<double>(t.table().size());
}
BENCHMARK(BM_TrackerObserveBatch)->Arg(1000)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kMicrosecond);

// The dynamic-block rules' meter (the two default rules: /32 over 30 s, /24 over 10 s), per
// request, with n distinct addresses at random (1 us apart), at the default table_size (16384
// prefixes per rule: at 10^6 addresses nearly every request evicts the least recent one).
void BM_BlockMeter(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  BlockMeter meter(static_cast<uint32_t>(state.range(1)), 7);
  std::vector<MeterRule> rules;
  for (const auto& r : policy::default_block_rules()) rules.push_back(r.meter());
  Draw draw(n);
  int64_t now = 1'000'000'000'000'000'000;
  uint64_t events = 0;
  for (auto _ : state)
    meter.observe(AddressKey::from(base::IpAddress::v4(draw() * 2654435761u)), now += 1000, rules, 1,
                  [&](const BlockEvent&) { ++events; });
  state.counters["events"] = static_cast<double>(events);
  state.counters["MiB_per_rule"] = static_cast<double>(meter.memory_bytes() / kMaxBlockRules) / (1 << 20);
}
BENCHMARK(BM_BlockMeter)->Args({1000, 16384})->Args({1000000, 16384})->Unit(benchmark::kNanosecond);


// The lookup of a source in the active blocks: n blocks, half /24s and half /32s (two
// groups: two binary searches), probes at random (most match nothing).
void BM_BlockSetMatch(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  policy::BlockBook book(1);
  policy::BlocksConfig config;
  config.max_active = n + 1;
  book.configure(config);
  book.set_logging(false);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t a = i * 2654435761u;
    const base::Cidr c = i % 2 ? base::Cidr{base::IpAddress::v4(a & 0xffffff00u), 24} : base::Cidr{base::IpAddress::v4(a), 32};
    book.add(c, policy::BlockAction::kDrop, 3600, "bench", 0);
  }
  const auto set = book.build_set();
  std::mt19937 rng(3);
  std::vector<AddressKey> probes(1 << 16);
  for (auto& k : probes) k = AddressKey::from(base::IpAddress::v4(rng()));
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(set->match(probes[i++ & 0xffff]));
  state.counters["blocks"] = static_cast<double>(set->blocks().size());
}
BENCHMARK(BM_BlockSetMatch)->Arg(0)->Arg(100)->Arg(10000);

// One lookup is one binary search over the compiled ranges: the cost grows with log2 of the
// rule count (issue 12, 3.6: a 1,000,000-line rules file).
void BM_PolicyLookup(benchmark::State& state) {
  std::vector<policy::Rule> rules;
  for (uint32_t i = 0; i < static_cast<uint32_t>(state.range(0)); ++i) {
    policy::Rule r;
    r.prefix = base::Cidr{base::IpAddress::v4((i * 2654435761u) & 0xffffff00u), 24};
    r.access = policy::Access::kDeny;
    rules.push_back(r);
  }
  std::vector<policy::RuleError> errors;
  const policy::Policy p = policy::Policy::compile(rules, {}, errors);
  std::mt19937 rng(2);
  std::vector<base::IpAddress> probes(1 << 16);
  for (auto& a : probes) a = base::IpAddress::v4(rng());
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(p.lookup(probes[i++ & 0xffff]));
  state.counters["duplicates"] = static_cast<double>(errors.size());
}
BENCHMARK(BM_PolicyLookup)->Arg(1000)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace strata::clients
