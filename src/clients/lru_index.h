// A fixed-capacity hash index with least-recently-used order over slots 0..capacity-1, for
// the client table and the limiter's prefix table. Built for tables far larger than the
// caches, where a lookup's cost is the cache lines it touches:
// - Each slot is one 64-octet cache line holding the table's record (the payload, at most 48
//   octets), its two LRU links, its reference bit and a word the table may use (word()).
// - The order is least recently used with a second chance (CLOCK): a hit sets the record's
//   reference bit (reference(), in the record's own line) instead of moving it to the front,
//   which would write its two neighbours' lines, two more cache misses per request at a
//   million clients. When room is needed, candidate() moves referenced records from the old
//   end to the front with their bits cleared, until it meets an unreferenced one: the least
//   recently used of the records not used since they were last moved. Each hit costs at
//   most one such move later. touch() still moves a record at once (exact LRU).
// - The hash index is an array of 64-octet buckets of 7 (tag, slot) pairs: a lookup reads
//   one bucket line, compares 32-bit tags (a false match is one in 2^32) and reads only the
//   record whose tag matches. A full bucket passes newcomers on to the next one and counts
//   them (`overflow`), so a lookup stops at the first bucket that passed nothing on. One
//   bucket per 5 slots (70% of the ways used when the table is full): overflow is rare.
// - prefetch_*(): a receive batch's lookups can be issued together (Tracker::prepare), so
//   their cache misses overlap instead of following one another.
// Allocates only in the constructor, in zero-filled pages that become resident as slots are
// used; single-threaded (one worker owns it), except size(), which any thread may read (the
// stats snapshot), and payloads, which the owner publishes as it likes (the client table's
// seqlock). One writer, so relaxed loads and stores suffice for the size.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>

#include "clients/zeroed_array.h"

namespace strata::clients {

// A prefetch of the line holding `p`. GCC 12 at -O2 removed __builtin_prefetch calls under a
// condition whose result nothing else used (every prefix-table prefetch of Tracker::prepare
// vanished from the object code); an asm statement marked volatile is always kept.
inline void prefetch(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 3);
#endif
}

struct NoPayload {};

template <class Payload>
class LruIndexT {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kWays = 7;
  static constexpr uint32_t kSlotsPerBucket = 5;

  // One cache line: the record and its place in the LRU order.
  struct alignas(64) Slot {
    Payload payload;
    uint32_t newer;  // kNone at the newest; in the free list: next free slot + 1, 0 at the end
    uint32_t older;  // kNone at the oldest
    uint32_t referenced;  // used since it was last moved to the front
    uint32_t word;        // the table's (zero in a new slot)
  };
  static_assert(sizeof(Slot) == 64, "a payload of at most 48 octets");

  // Tables of more than a few MiB take transparent huge pages: a lookup at a random place
  // then misses the TLB once per 2 MiB instead of once per 4 KiB, and (in a virtual machine
  // above all) a TLB miss is a page walk that the batch's prefetches would wait behind.
  explicit LruIndexT(uint32_t capacity)
      : slots_(capacity, pages_for(capacity)),
        buckets_(bucket_count_for(capacity), pages_for(capacity)),
        nbuckets_(bucket_count_for(capacity)) {}
  static Pages pages_for(uint32_t capacity) {
    return memory_bytes_for(capacity) >= (size_t{8} << 20) ? Pages::kHuge : Pages::kSmall;
  }

  // Buckets for `capacity` slots, and the octets the whole index then takes.
  static uint32_t bucket_count_for(uint32_t capacity) {
    return static_cast<uint32_t>(capacity / kSlotsPerBucket + 1);
  }
  static size_t memory_bytes_for(uint32_t capacity) {
    return size_t{capacity} * sizeof(Slot) + size_t{bucket_count_for(capacity)} * sizeof(Bucket);
  }
  size_t memory_bytes() const { return memory_bytes_for(capacity()); }

  uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }
  uint32_t size() const { return size_.load(std::memory_order_relaxed); }
  bool full() const { return size() == capacity(); }
  uint32_t newest() const { return head_; }
  uint32_t oldest() const { return tail_; }
  uint32_t older(uint32_t slot) const { return slots_[slot].older; }

  Payload& payload(uint32_t slot) { return slots_[slot].payload; }
  const Payload& payload(uint32_t slot) const { return slots_[slot].payload; }
  uint32_t& word(uint32_t slot) { return slots_[slot].word; }
  uint32_t word(uint32_t slot) const { return slots_[slot].word; }

  // The slot whose key equals `key`, or kNone. `matches(slot)` compares a slot's key.
  template <class Matches>
  uint32_t find(uint64_t hash, Matches matches) const {
    const uint32_t tag = tag_of(hash);
    for (uint32_t b = home(hash);; b = next(b)) {
      const Bucket& bucket = buckets_[b];
      for (uint32_t m = matching(bucket, tag); m != 0; m &= m - 1) {
        const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
        if (bucket.slot[w] != 0 && matches(bucket.slot[w] - 1)) return bucket.slot[w] - 1;
      }
      if (bucket.overflow == 0) return kNone;
    }
  }

  // Takes a free slot, links it under `hash` as the newest and returns it; kNone when full.
  // The caller writes the slot's key before the next find().
  uint32_t insert(uint64_t hash) {
    uint32_t s;
    if (free_ != kNone) {
      s = free_;
      free_ = slots_[s].newer == 0 ? kNone : slots_[s].newer - 1;
    } else if (unused_ < capacity()) {
      s = unused_++;
    } else {
      return kNone;
    }
    const uint32_t tag = tag_of(hash);
    for (uint32_t b = home(hash);; b = next(b)) {
      Bucket& bucket = buckets_[b];
      uint32_t w = 0;
      while (w < kWays && bucket.slot[w] != 0) ++w;
      if (w < kWays) {
        bucket.tag[w] = tag;
        bucket.slot[w] = s + 1;
        break;
      }
      ++bucket.overflow;
    }
    Slot& l = slots_[s];
    l.newer = kNone;
    l.older = head_;
    l.referenced = 0;
    l.word = 0;
    if (head_ != kNone) slots_[head_].newer = s;
    head_ = s;
    if (tail_ == kNone) tail_ = s;
    size_.store(size() + 1, std::memory_order_relaxed);
    return s;
  }

  // A hit: `slot` was used now (the second chance, above).
  void reference(uint32_t slot) { slots_[slot].referenced = 1; }

  // The slot to give up when room is needed (kNone when empty): referenced slots at the old
  // end move to the front, their bits cleared, until the oldest is one not used since.
  uint32_t candidate() {
    for (uint32_t moved = 0; tail_ != kNone && slots_[tail_].referenced != 0 && moved <= size(); ++moved) {
      slots_[tail_].referenced = 0;
      touch(tail_);
    }
    return tail_;
  }

  // Makes `slot` the newest.
  void touch(uint32_t slot) {
    slots_[slot].referenced = 0;
    if (slot == head_) return;
    unlink_order(slot);
    Slot& l = slots_[slot];
    l.newer = kNone;
    l.older = head_;
    if (head_ != kNone) slots_[head_].newer = slot;
    head_ = slot;
    if (tail_ == kNone) tail_ = slot;
  }

  // Frees `slot`, which was inserted under `hash`.
  void remove(uint32_t slot, uint64_t hash) {
    const uint32_t start = home(hash);
    uint32_t b = start;
    for (uint32_t passed = 0; passed < nbuckets_; ++passed, b = next(b)) {
      Bucket& bucket = buckets_[b];
      uint32_t w = 0;
      while (w < kWays && bucket.slot[w] != slot + 1) ++w;
      if (w < kWays) {
        bucket.slot[w] = 0;
        bucket.tag[w] = 0;
        // The buckets this one's key was passed over by no longer pass it on.
        for (uint32_t c = start; c != b; c = next(c)) --buckets_[c].overflow;
        break;
      }
      if (bucket.overflow == 0) break;  // not indexed under this hash: leave the index alone
    }
    unlink_order(slot);
    slots_[slot].newer = free_ == kNone ? 0 : free_ + 1;
    free_ = slot;
    size_.store(size() - 1, std::memory_order_relaxed);
  }

  // --- prefetching: hints only, never needed for a correct answer ---
  // The home bucket of `hash`.
  void prefetch_bucket(uint64_t hash) const { prefetch(&buckets_[home(hash)]); }
  // The slot(s) whose tag in the home bucket matches `hash` (the bucket should be in cache by
  // now). Returns the first such slot, or kNone.
  uint32_t prefetch_slot(uint64_t hash) const {
    const Bucket& bucket = buckets_[home(hash)];
    uint32_t first = kNone;
    for (uint32_t m = matching(bucket, tag_of(hash)); m != 0; m &= m - 1) {
      const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
      if (bucket.slot[w] == 0) continue;
      prefetch(&slots_[bucket.slot[w] - 1]);
      if (first == kNone) first = bucket.slot[w] - 1;
    }
    return first;
  }
  void prefetch_line(uint32_t slot) const {
    if (slot < capacity()) prefetch(&slots_[slot]);
  }

 private:
  // Zero is an empty way, so fresh zero pages are an empty index.
  struct alignas(64) Bucket {
    uint32_t tag[kWays];
    uint32_t overflow;  // keys whose probe passed this bucket (full) and went on
    uint32_t slot[kWays];  // slot + 1; 0: empty
    uint32_t spare;
  };
  static_assert(sizeof(Bucket) == 64);

  // Home bucket from the hash's upper half (a multiply, not a modulo), tag from the lower.
  uint32_t home(uint64_t hash) const {
    return static_cast<uint32_t>((hash >> 32) * uint64_t{nbuckets_} >> 32);
  }
  static uint32_t tag_of(uint64_t hash) { return static_cast<uint32_t>(hash); }
  // The ways whose tag is `tag`, as bits: compared all at once (the compiler makes it a
  // vector compare), no branch per way to mispredict.
  static uint32_t matching(const Bucket& bucket, uint32_t tag) {
    uint32_t m = 0;
    for (uint32_t w = 0; w < kWays; ++w) m |= static_cast<uint32_t>(bucket.tag[w] == tag) << w;
    return m;
  }
  uint32_t next(uint32_t b) const { return b + 1 == nbuckets_ ? 0 : b + 1; }

  void unlink_order(uint32_t slot) {
    Slot& l = slots_[slot];
    if (l.newer != kNone) slots_[l.newer].older = l.older; else head_ = l.older;
    if (l.older != kNone) slots_[l.older].newer = l.newer; else tail_ = l.newer;
  }

  ZeroedArray<Slot> slots_;
  ZeroedArray<Bucket> buckets_;
  uint32_t nbuckets_;
  uint32_t head_ = kNone;
  uint32_t tail_ = kNone;
  uint32_t free_ = kNone;
  uint32_t unused_ = 0;
  std::atomic<uint32_t> size_{0};
};

// The index alone (the tables' records elsewhere): what the unit tests drive.
using LruIndex = LruIndexT<NoPayload>;

}  // namespace strata::clients
