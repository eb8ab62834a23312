// Space-Saving (see space_saving.h).
#include "clients/space_saving.h"

#include <algorithm>
#include <bit>

namespace strata::clients {

namespace {
uint64_t key_hash(const AddressKey& k) { return hash_key(k, 0x53504143455341ULL); }
}  // namespace

SpaceSaving::SpaceSaving(uint32_t k)
    : k_(std::max<uint32_t>(k, 1)), slots_(std::bit_ceil(k_ * 4)), mask_(static_cast<uint32_t>(slots_.size() - 1)) {
  heap_.reserve(k_);
  scratch_.reserve(2 * static_cast<size_t>(k_));
}

void SpaceSaving::clear() {
  heap_.clear();
  std::fill(slots_.begin(), slots_.end(), 0);
  total_ = 0;
}

uint32_t SpaceSaving::find(const AddressKey& key, uint64_t hash) const {
  for (uint32_t i = static_cast<uint32_t>(hash) & mask_;; i = (i + 1) & mask_) {
    const uint32_t s = slots_[i];
    if (s == 0) return UINT32_MAX;
    if (heap_[s - 1].key == key) return s - 1;
  }
}

void SpaceSaving::index_insert(uint64_t hash, uint32_t pos) {
  uint32_t i = static_cast<uint32_t>(hash) & mask_;
  while (slots_[i] != 0) i = (i + 1) & mask_;
  slots_[i] = pos + 1;
}

void SpaceSaving::index_erase(const AddressKey& key) {
  // Linear probing deletion: remove, then re-place the rest of the cluster.
  uint32_t i = static_cast<uint32_t>(key_hash(key)) & mask_;
  while (slots_[i] != 0 && !(heap_[slots_[i] - 1].key == key)) i = (i + 1) & mask_;
  if (slots_[i] == 0) return;
  slots_[i] = 0;
  for (uint32_t j = (i + 1) & mask_; slots_[j] != 0; j = (j + 1) & mask_) {
    const uint32_t pos = slots_[j] - 1;
    slots_[j] = 0;
    index_insert(key_hash(heap_[pos].key), pos);
  }
}

void SpaceSaving::rebuild_index() {
  std::fill(slots_.begin(), slots_.end(), 0);
  for (uint32_t p = 0; p < heap_.size(); ++p) index_insert(key_hash(heap_[p].key), p);
}

void SpaceSaving::swap_entries(uint32_t a, uint32_t b) {
  // The index maps keys to heap positions: fix both.
  auto relocate = [&](uint32_t from, uint32_t to) {
    for (uint32_t i = static_cast<uint32_t>(key_hash(heap_[from].key)) & mask_;; i = (i + 1) & mask_)
      if (slots_[i] == from + 1) {
        slots_[i] = to + 1;
        return;
      }
  };
  relocate(a, b);
  relocate(b, a);
  std::swap(heap_[a], heap_[b]);
}

void SpaceSaving::sift_down(uint32_t i) {
  const auto n = static_cast<uint32_t>(heap_.size());
  for (;;) {
    uint32_t smallest = i;
    const uint32_t l = 2 * i + 1, r = 2 * i + 2;
    if (l < n && heap_[l].count < heap_[smallest].count) smallest = l;
    if (r < n && heap_[r].count < heap_[smallest].count) smallest = r;
    if (smallest == i) return;
    swap_entries(i, smallest);
    i = smallest;
  }
}

void SpaceSaving::sift_up(uint32_t i) {
  while (i > 0) {
    const uint32_t parent = (i - 1) / 2;
    if (heap_[parent].count <= heap_[i].count) return;
    swap_entries(i, parent);
    i = parent;
  }
}

void SpaceSaving::add(const AddressKey& key, uint64_t weight) {
  total_ += weight;
  const uint64_t hash = key_hash(key);
  const uint32_t pos = find(key, hash);
  if (pos != UINT32_MAX) {
    heap_[pos].count += weight;  // grew: may need to move down in a min-heap
    sift_down(pos);
    return;
  }
  if (heap_.size() < k_) {
    heap_.push_back({key, weight, 0});
    const auto p = static_cast<uint32_t>(heap_.size() - 1);
    index_insert(hash, p);
    sift_up(p);
    return;
  }
  // Replace the smallest: the newcomer may have had up to its count before.
  Entry& min = heap_[0];
  index_erase(min.key);
  const uint64_t floor = min.count;
  min = {key, floor + weight, floor};
  index_insert(hash, 0);
  sift_down(0);
}

void SpaceSaving::merge(const SpaceSaving& other) {
  // A key missing from one summary may have had up to that summary's minimum there.
  const uint64_t my_min = min_count(), their_min = other.min_count();
  // Scratch reserved at construction: merging (once a minute, on a worker) allocates nothing.
  std::vector<Entry>& all = scratch_;
  all.clear();
  for (const Entry& e : heap_) {
    const uint32_t p = other.find(e.key, key_hash(e.key));
    if (p != UINT32_MAX)
      all.push_back({e.key, e.count + other.heap_[p].count, e.error + other.heap_[p].error});
    else
      all.push_back({e.key, e.count + their_min, e.error + their_min});
  }
  for (const Entry& e : other.heap_)
    if (find(e.key, key_hash(e.key)) == UINT32_MAX)
      all.push_back({e.key, e.count + my_min, e.error + my_min});
  std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.count > b.count; });
  if (all.size() > k_) all.resize(k_);
  total_ += other.total_;
  heap_.swap(all);
  std::make_heap(heap_.begin(), heap_.end(), [](const Entry& a, const Entry& b) { return a.count > b.count; });
  rebuild_index();
}

std::vector<SpaceSaving::Entry> SpaceSaving::top() const {
  std::vector<Entry> out = heap_;
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.count != b.count ? a.count > b.count : a.key.bytes < b.key.bytes;
  });
  return out;
}

}  // namespace strata::clients
