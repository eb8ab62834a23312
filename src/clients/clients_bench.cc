// Microbenchmarks of the client table and rate limiter: ns per request (record + limit
// decision) with 10^3, 10^6 and 10^7 distinct clients already in the table, clients drawn
// at random (the table does not fit any cache at 10^6 and up: this is the miss cost), and
// the access-rule lookup with 100,000 rules.
#include <benchmark/benchmark.h>

#include <random>

#include "clients/tracker.h"
#include "policy/policy.h"

namespace strata::clients {
namespace {

void BM_TrackerObserve(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  TrackerOptions o;
  o.table.capacity = n + n / 8;
  o.table.mindepth = 0;
  o.prefix_capacity = n + n / 8;
  o.seed = 7;
  o.limits.min_spacing_s = 0;
  Tracker t(o);
  const base::IpAddress local = base::IpAddress::v4(0xc0000201u);
  // Addresses spread over the IPv4 space, as real clients are.
  std::vector<base::IpAddress> clients;
  clients.reserve(n);
  for (uint32_t i = 0; i < n; ++i) clients.push_back(base::IpAddress::v4(i * 2654435761u));
  int64_t now = 1'000'000'000'000'000'000;
  for (const auto& c : clients) t.observe(c, local, 3, 4, now += 1000);
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  std::vector<uint32_t> order(1 << 16);
  for (auto& x : order) x = pick(rng);
  size_t i = 0;
  for (auto _ : state) {
    const Observation obs = t.observe(clients[order[i++ & 0xffff]], local, 3, 4, now += 1000);
    benchmark::DoNotOptimize(obs);
  }
  state.counters["clients"] = static_cast<double>(t.table().size());
  state.counters["MiB"] = static_cast<double>(t.table().memory_bytes() + t.prefixes().memory_bytes()) / (1 << 20);
}
BENCHMARK(BM_TrackerObserve)->Arg(1000)->Arg(1000000)->Arg(10000000)->Unit(benchmark::kNanosecond);

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
