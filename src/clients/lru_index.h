// A fixed-capacity hash index with least-recently-used order over slots 0..capacity-1, for
// tables whose records live in arrays of their own (the client table, the limiter's prefix
// table). Chained hashing with 32-bit slot numbers and a power-of-two bucket array, and an
// intrusive doubly linked list from newest to oldest: 12 octets of links per slot plus at
// most 4 of buckets. Allocates only in the constructor, in zero-filled pages that become
// resident as slots are used; single-threaded (one worker owns it), except size(), which
// any thread may read (the stats snapshot): one writer, so relaxed loads and stores suffice.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>

#include "clients/zeroed_array.h"

namespace strata::clients {

class LruIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  explicit LruIndex(uint32_t capacity)
      : links_(capacity),
        buckets_(std::bit_floor(capacity > 1 ? capacity : 1u)),
        mask_(static_cast<uint32_t>(buckets_.size() - 1)) {}

  uint32_t capacity() const { return static_cast<uint32_t>(links_.size()); }
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  bool full() const { return size() == capacity(); }
  uint32_t newest() const { return head_; }
  uint32_t oldest() const { return tail_; }
  uint32_t older(uint32_t slot) const { return links_[slot].older; }
  size_t bucket_count() const { return buckets_.size(); }

  // The slot whose key equals `key`, or kNone. `matches(slot)` compares a slot's key.
  template <class Matches>
  uint32_t find(uint64_t hash, Matches matches) const {
    for (uint32_t s = buckets_[hash & mask_]; s != 0; s = links_[s - 1].chain)
      if (matches(s - 1)) return s - 1;
    return kNone;
  }

  // Takes a free slot, links it under `hash` as the newest and returns it; kNone when full.
  // The caller writes the slot's key before the next find().
  uint32_t insert(uint64_t hash) {
    uint32_t s;
    if (free_ != kNone) {
      s = free_;
      free_ = links_[s].chain == 0 ? kNone : links_[s].chain - 1;
    } else if (unused_ < capacity()) {
      s = unused_++;
    } else {
      return kNone;
    }
    Link& l = links_[s];
    l.chain = buckets_[hash & mask_];
    buckets_[hash & mask_] = s + 1;
    l.newer = kNone;
    l.older = head_;
    if (head_ != kNone) links_[head_].newer = s;
    head_ = s;
    if (tail_ == kNone) tail_ = s;
    size_.store(size() + 1, std::memory_order_relaxed);
    return s;
  }

  // Makes `slot` the newest.
  void touch(uint32_t slot) {
    if (slot == head_) return;
    unlink_order(slot);
    Link& l = links_[slot];
    l.newer = kNone;
    l.older = head_;
    if (head_ != kNone) links_[head_].newer = slot;
    head_ = slot;
    if (tail_ == kNone) tail_ = slot;
  }

  // Frees `slot`, which was inserted under `hash`.
  void remove(uint32_t slot, uint64_t hash) {
    uint32_t* p = &buckets_[hash & mask_];
    while (*p != slot + 1 && *p != 0) p = &links_[*p - 1].chain;
    if (*p == slot + 1) *p = links_[slot].chain;
    unlink_order(slot);
    links_[slot].chain = free_ == kNone ? 0 : free_ + 1;
    free_ = slot;
    size_.store(size() - 1, std::memory_order_relaxed);
  }

 private:
  // Written by insert() before any read. Chains and buckets hold slot + 1 (0: end), so
  // fresh zero pages are an empty table.
  struct Link {
    uint32_t newer;
    uint32_t older;
    uint32_t chain;  // next slot + 1 in the bucket, or in the free list
  };

  void unlink_order(uint32_t slot) {
    Link& l = links_[slot];
    if (l.newer != kNone) links_[l.newer].older = l.older; else head_ = l.older;
    if (l.older != kNone) links_[l.older].newer = l.newer; else tail_ = l.newer;
  }

  ZeroedArray<Link> links_;
  ZeroedArray<uint32_t> buckets_;
  uint32_t mask_;
  uint32_t head_ = kNone;
  uint32_t tail_ = kNone;
  uint32_t free_ = kNone;
  uint32_t unused_ = 0;
  std::atomic<uint32_t> size_{0};
};

}  // namespace strata::clients
