// Mode 6 off the packet path. A worker that meets a mode-6 request a rule lets in copies it
// into its own single-producer ring (no lock, no allocation; full ring: dropped and counted)
// and pokes an eventfd; the control service's one thread drains the rings, answers through
// the mode-6 responder, and sends the replies over the socket the request came in on
// (Backend::send_one, which shares nothing with the worker). A flood of mode 6 therefore
// costs the workers a copy per packet at most, and never delays a time reply.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "io/backend.h"
#include "mode6/responder.h"
#include "server/rules.h"

namespace strata::server {

struct ControlItem {
  std::array<uint8_t, 1024> data;  // a mode-6 request is at most 12 + 468 + 4 + 24 octets
  uint16_t length = 0;
  uint16_t channel = 0;
  int ifindex = 0;
  base::Endpoint peer;
  base::IpAddress local;
  int64_t rx_ns = 0;
};

class ControlQueue {
 public:
  static constexpr size_t kDepth = 64;  // per worker

  explicit ControlQueue(size_t workers);
  ~ControlQueue();
  ControlQueue(const ControlQueue&) = delete;
  ControlQueue& operator=(const ControlQueue&) = delete;

  // Worker `worker` (its only producer) hands over a request. False when its ring is full or
  // the request is too long.
  bool push(size_t worker, const io::Packet& p, int64_t rx_ns);
  // Consumer: calls f(worker, const ControlItem&) for every waiting item. Returns how many.
  template <class F>
  size_t drain(F f) {
    size_t n = 0;
    for (size_t w = 0; w < rings_.size(); ++w) {
      Ring& r = *rings_[w];
      uint64_t tail = r.tail.load(std::memory_order_relaxed);
      const uint64_t head = r.head.load(std::memory_order_acquire);
      for (; tail != head; ++tail, ++n) f(w, r.items[tail % kDepth]);
      r.tail.store(tail, std::memory_order_release);
    }
    return n;
  }
  // Waits until something was pushed or `timeout_ms` passed.
  void wait(int timeout_ms);
  // Wakes a wait() (for stopping).
  void wake();

 private:
  struct Ring {
    alignas(64) std::atomic<uint64_t> head{0};  // written by the worker
    alignas(64) std::atomic<uint64_t> tail{0};  // written by the consumer
    std::array<ControlItem, kDepth> items;
  };
  std::vector<std::unique_ptr<Ring>> rings_;
  int event_fd_ = -1;
};

// The thread that answers mode 6.
class ControlService {
 public:
  // `backends[w]` is worker w's backend; `rules` the rules in force (reader slot `reader`).
  ControlService(ControlQueue& queue, std::vector<io::Backend*> backends, RulesCell& rules,
                 size_t reader, const mode6::ResponderOptions& options, mode6::Sources& sources,
                 stats::WorkerCounters& counters);
  ~ControlService();
  void start();
  void stop();
  // Handles everything waiting now (the thread's loop body; tests call it directly).
  size_t run_once(int timeout_ms);

 private:
  ControlQueue& queue_;
  std::vector<io::Backend*> backends_;
  RulesCell& rules_;
  size_t reader_;
  stats::WorkerCounters& counters_;
  mode6::Responder responder_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace strata::server
