// The reloadable part of the configuration: access rules and rate limits, published to the
// workers without a lock (Cell<T>: the dynamic blocks use the same). A reader (a worker, the mode-6 thread) holds the set in force for
// one batch (RulesHold: acquire() when the batch has arrived, release() when it is done);
// publish() swaps in a new set and frees the old one once every reader has either started a
// batch since or holds nothing (a grace period, like RCU). A reader blocked waiting for
// packets holds nothing, so a reload waits only for batches in progress (microseconds), not
// for idle readers' receive timeouts (it used to take 250 ms, which made a reload storm at
// 50 ms impossible). A reader slower than publish()'s wait keeps the old set alive only until
// it has moved on: every later publish() and reclaim() frees the sets no reader can still hold.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "auth/keys.h"
#include "nts/cookies.h"
#include "clients/limiter.h"
#include "policy/blocks.h"
#include "policy/policy.h"

namespace strata::server {

struct Rules {
  policy::Policy policy;
  clients::LimitParams limits;
  auth::KeyRing keys;
  auth::BadMac bad_mac = auth::BadMac::kDrop;
  uint32_t control_key = 0;  // a mode-6 request with a MAC of this key is answered anywhere
  // NTS cookie secrets and key periods ([nts]); null: NTS requests are declined.
  std::shared_ptr<const nts::Secrets> nts_secrets;
  nts::KeyPolicy nts_keys;
};

template <class T>
class Cell {
 public:
  Cell(std::unique_ptr<const T> initial, size_t readers)
      : current_(initial.get()), slots_(readers) {
    owned_.push_back({std::move(initial), 0});
  }
  Cell(const Cell&) = delete;
  Cell& operator=(const Cell&) = delete;

  // Reader `reader` (one per worker) starts a batch. It announces the generation before it
  // reads the pointer (all sequentially consistent): a publish() that saw this reader holding
  // nothing made its store of the new pointer before that, so the pointer read here is the
  // new one; one that sees the announced generation waits for the next.
  const T* acquire(size_t reader) {
    const uint64_t g = generation_.load(std::memory_order_seq_cst);
    slots_[reader].seen.store(g, std::memory_order_seq_cst);
    return current_.load(std::memory_order_seq_cst);
  }
  // The batch is done: the reader holds no set until its next acquire().
  void release(size_t reader) { slots_[reader].seen.store(kHoldsNothing, std::memory_order_release); }

  // Publishes `next`; frees the previous set once every reader has moved past it, waiting
  // at most `timeout`. Returns false when some reader did not (the old set is kept).
  bool publish(std::unique_ptr<const T> next, std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> lock(publish_mutex_);
    const T* old = current_.load(std::memory_order_relaxed);
    current_.store(next.get(), std::memory_order_seq_cst);
    const uint64_t g = generation_.fetch_add(1, std::memory_order_seq_cst) + 1;
    // `old` was current until generation g: freed once every reader has seen g.
    for (auto& o : owned_)
      if (o.rules.get() == old) o.retired_at = g;
    owned_.push_back({std::move(next), 0});
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool all = true;
    for (const Slot& s : slots_) {
      while (s.seen.load(std::memory_order_seq_cst) < g) {  // kHoldsNothing is above any g
        if (std::chrono::steady_clock::now() > deadline) {
          all = false;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!all) break;
    }
    reclaim_locked();
    return all;
  }

  // Frees the retired sets no reader can still hold (the main thread calls it now and then,
  // so a set left by a publish() that timed out does not stay for good).
  void reclaim() {
    std::lock_guard<std::mutex> lock(publish_mutex_);
    reclaim_locked();
  }

  // Sets held: the current one and those retired but maybe still in a reader's hands.
  size_t held() {
    std::lock_guard<std::mutex> lock(publish_mutex_);
    return owned_.size();
  }

  // The set in force (control thread: for reports).
  const T* current() const { return current_.load(std::memory_order_acquire); }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  static constexpr uint64_t kHoldsNothing = UINT64_MAX;
  struct alignas(64) Slot {
    std::atomic<uint64_t> seen{kHoldsNothing};  // generation announced by acquire()
  };
  struct Owned {
    std::unique_ptr<const T> rules;
    uint64_t retired_at;  // 0: current; else the generation that replaced it
  };
  void reclaim_locked() {
    uint64_t oldest_seen = UINT64_MAX;
    for (const Slot& s : slots_) oldest_seen = std::min(oldest_seen, s.seen.load(std::memory_order_acquire));
    // A reader that has seen generation g loaded the pointer of g or later.
    std::erase_if(owned_, [&](const Owned& o) { return o.retired_at != 0 && o.retired_at <= oldest_seen; });
  }
  std::atomic<const T*> current_;
  std::atomic<uint64_t> generation_{0};
  std::vector<Slot> slots_;
  std::mutex publish_mutex_;
  std::vector<Owned> owned_;  // the current set and any not yet freed
};

// A reader's hold on the set in force for one batch: acquire() now, release() at the end of
// the scope.
template <class T>
class Hold {
 public:
  Hold(Cell<T>& cell, size_t reader) : cell_(cell), reader_(reader), rules_(cell.acquire(reader)) {}
  ~Hold() { cell_.release(reader_); }
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;
  const T& operator*() const { return *rules_; }

 private:
  Cell<T>& cell_;
  size_t reader_;
  const T* rules_;
};

using RulesCell = Cell<Rules>;
using RulesHold = Hold<Rules>;
// The dynamic blocks in force (policy/blocks.h), published by the main thread the same way.
using BlocksCell = Cell<policy::BlockSet>;
using BlocksHold = Hold<policy::BlockSet>;

}  // namespace strata::server
