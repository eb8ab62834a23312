// Microbenchmarks of the packet path: request parsing, the whole per-packet decision, the
// worker loop over the in-memory backend, and the pieces it uses per batch.
#include <benchmark/benchmark.h>

#include "base/bytes.h"
#include "io/memory_backend.h"
#include "server/decide.h"
#include "server/worker.h"

namespace strata::server {
namespace {

std::vector<uint8_t> client_request() {
  std::vector<uint8_t> p(48, 0);
  p[0] = 4 << 3 | 3;
  base::store_be64(&p[40], 0x1234);
  return p;
}

void BM_ParseRequest(benchmark::State& state) {
  const auto p = client_request();
  for (auto _ : state) benchmark::DoNotOptimize(wire::parse_request(p));
}
BENCHMARK(BM_ParseRequest);

void BM_Decide(benchmark::State& state) {
  const auto p = client_request();
  clock::TimeState s;
  s.synchronised = true;
  s.stratum = 2;
  const BatchContext ctx = make_context(s, s.as_of, clock::UnsyncAction::kReply);
  uint8_t out[128];
  stats::WorkerCounters counters;
  for (auto _ : state) {
    const Decision d = decide(p, false, 40000, base::NtpTimestamp{1}, ctx, out);
    count(d, counters);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Decide);

void BM_MakeContext(benchmark::State& state) {
  clock::TimeStateCell cell;
  for (auto _ : state) {
    const clock::TimeState s = cell.load();
    benchmark::DoNotOptimize(make_context(s, base::now_real(), clock::UnsyncAction::kReply));
  }
}
BENCHMARK(BM_MakeContext);

// A whole batch of 64 through the worker (decide, stamps, counters, histogram) per iteration.
void BM_WorkerBatch64(benchmark::State& state) {
  io::MemoryBackend backend;
  clock::TimeStateCell cell;
  clock::TimeState s;
  s.synchronised = true;
  cell.store(s);
  WorkerStats stats;
  Worker worker(backend, cell, stats, WorkerOptions{});
  io::MemoryBackend::Datagram d;
  d.bytes = client_request();
  d.peer = *base::Endpoint::parse("192.0.2.1:40000", std::nullopt);
  d.rx_time = base::now_real();
  for (auto _ : state) {
    state.PauseTiming();
    backend.clear_sent();
    for (int i = 0; i < 64; ++i) backend.inject(d);
    state.ResumeTiming();
    worker.run_once(std::chrono::milliseconds(0));
  }
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_WorkerBatch64);

}  // namespace
}  // namespace strata::server
