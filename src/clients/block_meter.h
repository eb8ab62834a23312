// Request rates per prefix for the dynamic-block rules ([[blocks.rule]], policy/blocks.h):
// for each rule, a fixed-size set-associative table (4 ways a set, 2 cache lines) of the
// prefixes of the rule's length the worker has seen lately, each with its request count in the
// current and the previous window; a newcomer replaces the way with the lowest estimate (a
// heavy prefix is not pushed out by a stream of one-off sources, and no LRU list is kept: an
// LRU table's eviction touched five or six lines, 166 ns a request at 10^6 clients against
// this table's one set). The rate over a window is the sliding estimate prev x (the part of
// the previous window still inside the last `window` seconds) + current: a client that
// polls every 64 s and one that polls six times a second are told apart over the rule's real
// window, not over the last N packets (dnsdist scans a ring of 10,000 packets: 0.1 s at
// 100k/s). A prefix crossing its rule's warning or trigger level is reported once per window
// as a BlockEvent on the worker's ring to the main thread, which decides (policy::BlockBook).
//
// Every request of one prefix reaches one worker (the steering hashes the shortest prefix of
// [ratelimit] and the rules, io/steering.h), so one worker's count is the prefix's count.
//
// The tables (kMaxBlockRules per worker) are mapped zero-filled at start and become resident
// as prefixes arrive: a rule that is never configured costs address space only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "clients/address_key.h"
#include "clients/zeroed_array.h"

namespace strata::clients {

inline constexpr size_t kMaxBlockRules = 8;

// What the meter needs of a rule (policy::BlockRule compiled).
struct MeterRule {
  int v4_prefix = 32;
  int v6_prefix = 64;
  int64_t window_ns = 30'000'000'000;
  double trigger = 60;  // requests in one window (the sliding estimate) that trigger
  double warn = 0;      // requests in one window that are worth a warning; 0: none
};

struct BlockEvent {
  AddressKey prefix;  // the rule's prefix of the source (host bits zero)
  int64_t at_ns = 0;
  float requests = 0;  // the window's estimate when it crossed the level
  uint8_t rule = 0;
  bool warning = false;  // the warning level, not the trigger
};

// Events from one worker (the only producer) to the main thread (the only consumer): a
// bounded ring; a full ring drops the event (counted; the prefix reports again next window).
class BlockEvents {
 public:
  static constexpr uint32_t kCapacity = 256;
  bool push(const BlockEvent& e) {
    const uint32_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) >= kCapacity) {
      lost_.store(lost_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return false;
    }
    ring_[head % kCapacity] = e;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }
  template <class F>
  size_t drain(F f) {
    const uint32_t head = head_.load(std::memory_order_acquire);
    uint32_t tail = tail_.load(std::memory_order_relaxed);
    size_t n = 0;
    for (; tail != head; ++tail, ++n) f(ring_[tail % kCapacity]);
    tail_.store(tail, std::memory_order_release);
    return n;
  }
  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }

 private:
  BlockEvent ring_[kCapacity];
  alignas(64) std::atomic<uint32_t> head_{0};
  alignas(64) std::atomic<uint32_t> tail_{0};
  std::atomic<uint64_t> lost_{0};
};

class BlockMeter {
 public:
  // `capacity`: prefixes per rule ([blocks] table_size; rounded up to a power of two).
  BlockMeter(uint32_t capacity, uint64_t seed);

  // One request of `address` at `now_ns` under `rules` (at most kMaxBlockRules). `epoch`
  // names the rule set: when it changes, every count starts again. Returns the events to
  // report (a rule's warning or trigger level crossed, once per prefix per window) through
  // `emit(const BlockEvent&)`.
  template <class Emit>
  void observe(const AddressKey& address, int64_t now_ns, std::span<const MeterRule> rules, uint32_t epoch,
               Emit emit) {
    const size_t n = std::min(rules.size(), tables_.size());
    for (size_t r = 0; r < n; ++r) {
      BlockEvent e;
      if (count(r, address, now_ns, rules[r], epoch, e)) {
        e.rule = static_cast<uint8_t>(r);
        emit(e);
      }
    }
  }

  // The window estimate of `address`'s prefix under rule `r` now (tests, reports).
  double estimate(size_t r, const AddressKey& address, int64_t now_ns, const MeterRule& rule) const;

  size_t memory_bytes() const { return tables_.size() * sets_ * sizeof(Set); }
  uint32_t capacity() const { return sets_ * kWays; }

 private:
  // One prefix: 32 octets, two to a cache line, four to a set. Times are ticks of 2^20 ns
  // (about 1 ms) in 32 bits, compared by unsigned difference: right for gaps under 25 days
  // (a prefix silent longer than that may keep a few stale counts).
  struct Entry {
    AddressKey key;
    uint32_t start;  // tick the current window began
    uint32_t count;  // requests in the current window
    uint32_t prev;   // requests in the previous window
    uint16_t epoch;
    uint8_t said;  // 1: warned in this window, 2: triggered in this window
    uint8_t live;
  };
  static_assert(sizeof(Entry) == 32);
  static constexpr uint32_t kWays = 4;
  struct alignas(64) Set {
    Entry way[kWays];
  };

  uint32_t set_of(const AddressKey& key, size_t r) const {
    return static_cast<uint32_t>(hash_key(key, seed_ + r) >> 32) & (sets_ - 1);
  }
  bool count(size_t r, const AddressKey& address, int64_t now_ns, const MeterRule& rule, uint32_t epoch,
             BlockEvent& out);

  uint32_t sets_;
  uint64_t seed_;
  std::vector<ZeroedArray<Set>> tables_;
};

}  // namespace strata::clients
