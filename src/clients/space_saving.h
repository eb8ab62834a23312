// Space-Saving heavy hitters (Metwally, Agrawal, El Abbadi 2005) in fixed memory: k
// counters; a new key takes the place of the smallest and inherits its count as its error.
// Every key with more than total/k of the weight is in the summary, and each count
// overestimates by at most its error, so a flood of millions of one-packet sources cannot
// push a real top talker out. Weighted (requests or bytes), with a min-heap for the smallest
// and an open-addressing index. Mergeable (Agarwal et al., "Mergeable summaries", 2012) for
// windows and across workers. Single writer; copies are taken under the owner's control.
#pragma once

#include <cstdint>
#include <vector>

#include "clients/address_key.h"

namespace strata::clients {

class SpaceSaving {
 public:
  struct Entry {
    AddressKey key;
    uint64_t count = 0;  // an overestimate by at most `error`
    uint64_t error = 0;
  };

  explicit SpaceSaving(uint32_t k = 512);

  void add(const AddressKey& key, uint64_t weight);
  // this = this + other (same k), as mergeable summaries combine.
  void merge(const SpaceSaving& other);
  void clear();

  uint64_t total() const { return total_; }  // all weight added, tracked or not
  uint32_t capacity() const { return k_; }
  // The entries, largest count first.
  std::vector<Entry> top() const;
  const std::vector<Entry>& entries() const { return heap_; }
  uint64_t min_count() const { return heap_.size() < k_ ? 0 : heap_[0].count; }

 private:
  uint32_t find(const AddressKey& key, uint64_t hash) const;  // heap position or UINT32_MAX
  void sift_down(uint32_t i);
  void sift_up(uint32_t i);
  void swap_entries(uint32_t a, uint32_t b);
  void index_insert(uint64_t hash, uint32_t pos);
  void index_erase(const AddressKey& key);
  void rebuild_index();

  uint32_t k_;
  uint64_t total_ = 0;
  std::vector<Entry> heap_;       // min-heap by count
  std::vector<uint32_t> slots_;   // open addressing: heap position + 1, 0 empty
  std::vector<Entry> scratch_;    // for merge()
  uint32_t mask_;
};

}  // namespace strata::clients
