// Space-Saving heavy hitters (Metwally, Agrawal, El Abbadi 2005) in fixed memory: k
// counters; a new key takes the place of the smallest and inherits its count as its error.
// Every key with more than total/k of the weight is in the summary, and each count
// overestimates by at most its error, so a flood of millions of one-packet sources cannot
// push a real top talker out. Weighted (requests or bytes), with a min-heap for the smallest
// and an open-addressing index. Mergeable (Agarwal et al., "Mergeable summaries", 2012) for
// windows and across workers. Single writer; copies are taken under the owner's control.
//
// With a filter (Filtered Space-Saving, Homem and Carvalho 2010): a key not in a full
// summary first adds its weight to a counter chosen by its hash, and takes the smallest
// entry's place only once that counter reaches the smallest count; the entry it replaces
// leaves its count in its own counter. Each counter is then at least the weight of every
// key outside the summary that hashes to it, and at most the smallest count, so the
// guarantees are Space-Saving's (counts never under, errors at most total/k, every key with
// more than total/k in the summary), and a flood of one-off sources costs a counter
// increment per request instead of a replacement (heap and index work) per request.
#pragma once

#include <cstdint>
#include <vector>

#include "clients/address_key.h"

namespace strata::clients {

// The counters of Filtered Space-Saving, kept beside the summary they filter (only the one
// being added to needs them; copies and merges do not).
struct SpaceSavingFilter {
  explicit SpaceSavingFilter(uint32_t buckets);
  void clear();
  // The counter of a key with Space-Saving hash `hash` (other bits than the index's).
  uint32_t& counter(uint64_t hash) { return alpha[(hash >> 40) & mask]; }
  std::vector<uint32_t> alpha;
  uint32_t mask;
};

class SpaceSaving {
 public:
  struct Entry {
    AddressKey key;
    uint64_t count = 0;  // an overestimate by at most `error`
    uint64_t error = 0;
  };

  explicit SpaceSaving(uint32_t k = 512);

  void add(const AddressKey& key, uint64_t weight);
  // The same with the key's hash (hash_of: the summary's index is built with it, no other
  // hash will do) computed once for several summaries, and an optional filter (cleared
  // whenever this summary is).
  void add(const AddressKey& key, uint64_t hash, uint64_t weight, SpaceSavingFilter* filter);
  static uint64_t hash_of(const AddressKey& key);
  // this = this + other (same k), as mergeable summaries combine.
  void merge(const SpaceSaving& other);
  void clear();

  uint64_t total() const { return total_; }  // all weight added, tracked or not
  uint32_t capacity() const { return k_; }
  // The entries, largest count first.
  std::vector<Entry> top() const;
  uint64_t min_count() const { return heap_.size() < k_ ? 0 : entries_[heap_[0]].count; }

 private:
  // Entries stay in their slot; the heap orders slot numbers and pos_ says where each slot
  // sits in it, so moving an entry in the heap is two integer writes, no rehashing.
  uint32_t find(const AddressKey& key, uint64_t hash) const;  // slot or UINT32_MAX
  void sift_down(uint32_t i);
  void sift_up(uint32_t i);
  void place(uint32_t i, uint32_t slot) {
    heap_[i] = slot;
    pos_[slot] = i;
  }
  void index_insert(uint64_t hash, uint32_t slot);
  void index_erase(const AddressKey& key, uint64_t hash);
  void rebuild();

  uint32_t k_;
  uint64_t total_ = 0;
  std::vector<Entry> entries_;    // by slot
  std::vector<uint32_t> heap_;    // slots, min-heap by count
  std::vector<uint32_t> pos_;     // slot -> heap position
  std::vector<uint32_t> index_;   // open addressing: slot + 1, 0 empty
  std::vector<Entry> scratch_;    // for merge()
  uint32_t mask_;
};

}  // namespace strata::clients
