// The reloadable part of the configuration: access rules and rate limits, published to the
// workers without a lock. A worker calls acquire() at the start of every batch and uses the
// returned Rules for the whole batch; publish() swaps in a new set and frees the old one
// once every worker has started a batch since (a grace period, like RCU). Workers blocked
// in a receive come back within the receive timeout (250 ms), so a reload completes in well
// under a second; a worker that has stopped makes publish() keep the old set alive instead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "auth/keys.h"
#include "clients/limiter.h"
#include "policy/policy.h"

namespace strata::server {

struct Rules {
  policy::Policy policy;
  clients::LimitParams limits;
  auth::KeyRing keys;
  auth::BadMac bad_mac = auth::BadMac::kDrop;
  uint32_t control_key = 0;  // a mode-6 request with a MAC of this key is answered anywhere
};

class RulesCell {
 public:
  RulesCell(std::unique_ptr<const Rules> initial, size_t readers)
      : current_(initial.get()), slots_(readers) {
    owned_.push_back(std::move(initial));
  }
  RulesCell(const RulesCell&) = delete;
  RulesCell& operator=(const RulesCell&) = delete;

  // Reader `reader` (one per worker) starts a batch.
  const Rules* acquire(size_t reader) {
    const uint64_t g = generation_.load(std::memory_order_acquire);
    const Rules* r = current_.load(std::memory_order_acquire);
    slots_[reader].seen.store(g, std::memory_order_release);
    return r;
  }

  // Publishes `next`; frees the previous set once every reader has moved past it, waiting
  // at most `timeout`. Returns false when some reader did not (the old set is kept).
  bool publish(std::unique_ptr<const Rules> next, std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> lock(publish_mutex_);
    const Rules* old = current_.load(std::memory_order_relaxed);
    current_.store(next.get(), std::memory_order_release);
    owned_.push_back(std::move(next));
    const uint64_t g = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const Slot& s : slots_) {
      while (s.seen.load(std::memory_order_acquire) < g) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    // Every reader has loaded a newer pointer: nobody can still use `old`.
    std::erase_if(owned_, [&](const std::unique_ptr<const Rules>& r) { return r.get() == old; });
    return true;
  }

  // The set in force (control thread: for reports).
  const Rules* current() const { return current_.load(std::memory_order_acquire); }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> seen{0};
  };
  std::atomic<const Rules*> current_;
  std::atomic<uint64_t> generation_{0};
  std::vector<Slot> slots_;
  std::mutex publish_mutex_;
  std::vector<std::unique_ptr<const Rules>> owned_;  // the current set and any not yet freed
};

}  // namespace strata::server
