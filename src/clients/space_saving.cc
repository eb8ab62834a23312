// Space-Saving (see space_saving.h).
#include "clients/space_saving.h"

#include <algorithm>
#include <bit>

namespace strata::clients {

namespace {
uint64_t key_hash(const AddressKey& k) { return hash_key(k, 0x53504143455341ULL); }
}  // namespace

SpaceSavingFilter::SpaceSavingFilter(uint32_t buckets)
    : alpha(std::bit_ceil(std::max<uint32_t>(buckets, 1))),
      mask(static_cast<uint32_t>(alpha.size() - 1)) {}

void SpaceSavingFilter::clear() { std::fill(alpha.begin(), alpha.end(), 0); }

uint64_t SpaceSaving::hash_of(const AddressKey& key) { return key_hash(key); }

SpaceSaving::SpaceSaving(uint32_t k)
    : k_(std::max<uint32_t>(k, 1)),
      pos_(k_),
      index_(std::bit_ceil(k_ * 4)),
      mask_(static_cast<uint32_t>(index_.size() - 1)) {
  entries_.reserve(k_);
  heap_.reserve(k_);
  scratch_.reserve(2 * static_cast<size_t>(k_));
}

void SpaceSaving::clear() {
  entries_.clear();
  heap_.clear();
  std::fill(index_.begin(), index_.end(), 0);
  total_ = 0;
}

uint32_t SpaceSaving::find(const AddressKey& key, uint64_t hash) const {
  for (uint32_t i = static_cast<uint32_t>(hash) & mask_;; i = (i + 1) & mask_) {
    const uint32_t s = index_[i];
    if (s == 0) return UINT32_MAX;
    if (entries_[s - 1].key == key) return s - 1;
  }
}

void SpaceSaving::index_insert(uint64_t hash, uint32_t slot) {
  uint32_t i = static_cast<uint32_t>(hash) & mask_;
  while (index_[i] != 0) i = (i + 1) & mask_;
  index_[i] = slot + 1;
}

void SpaceSaving::index_erase(const AddressKey& key, uint64_t hash) {
  // Linear probing deletion: remove, then re-place the rest of the cluster.
  uint32_t i = static_cast<uint32_t>(hash) & mask_;
  while (index_[i] != 0 && !(entries_[index_[i] - 1].key == key)) i = (i + 1) & mask_;
  if (index_[i] == 0) return;
  index_[i] = 0;
  for (uint32_t j = (i + 1) & mask_; index_[j] != 0; j = (j + 1) & mask_) {
    const uint32_t slot = index_[j] - 1;
    index_[j] = 0;
    index_insert(key_hash(entries_[slot].key), slot);
  }
}

void SpaceSaving::sift_down(uint32_t i) {
  const auto n = static_cast<uint32_t>(heap_.size());
  const uint32_t slot = heap_[i];
  const uint64_t count = entries_[slot].count;
  for (;;) {
    const uint32_t l = 2 * i + 1;
    if (l >= n) break;
    uint32_t c = l;
    if (l + 1 < n && entries_[heap_[l + 1]].count < entries_[heap_[l]].count) c = l + 1;
    if (entries_[heap_[c]].count >= count) break;
    place(i, heap_[c]);
    i = c;
  }
  place(i, slot);
}

void SpaceSaving::sift_up(uint32_t i) {
  const uint32_t slot = heap_[i];
  const uint64_t count = entries_[slot].count;
  while (i > 0) {
    const uint32_t parent = (i - 1) / 2;
    if (entries_[heap_[parent]].count <= count) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, slot);
}

void SpaceSaving::add(const AddressKey& key, uint64_t weight) {
  add(key, key_hash(key), weight, nullptr);
}

void SpaceSaving::add(const AddressKey& key, uint64_t hash, uint64_t weight,
                      SpaceSavingFilter* filter) {
  total_ += weight;
  const uint32_t slot = find(key, hash);
  if (slot != UINT32_MAX) {
    entries_[slot].count += weight;  // grew: it may move down in a min-heap
    sift_down(pos_[slot]);
    return;
  }
  if (entries_.size() < k_) {
    const auto s = static_cast<uint32_t>(entries_.size());
    entries_.push_back({key, weight, 0});
    index_insert(hash, s);
    heap_.push_back(s);
    pos_[s] = static_cast<uint32_t>(heap_.size() - 1);
    sift_up(pos_[s]);
    return;
  }
  // Replace the smallest: the newcomer may have had up to its count before.
  const uint32_t s = heap_[0];
  Entry& min = entries_[s];
  uint64_t floor = min.count;
  if (filter != nullptr) {
    // The newcomer has had at most its counter's weight so far (all keys of its counter
    // outside the summary together); below the smallest count it stays out.
    uint32_t& a = filter->counter(hash);
    if (a + weight < floor) {
      a = static_cast<uint32_t>(a + weight);
      return;
    }
    floor = a;
  }
  const uint64_t min_hash = key_hash(min.key);
  if (filter != nullptr) {  // the leaving key keeps its bound (at most the smallest count)
    uint32_t& left = filter->counter(min_hash);
    left = static_cast<uint32_t>(std::min<uint64_t>(UINT32_MAX, std::max<uint64_t>(left, min.count)));
  }
  index_erase(min.key, min_hash);
  min = {key, floor + weight, floor};
  index_insert(hash, s);
  sift_down(0);
}

void SpaceSaving::rebuild() {
  std::fill(index_.begin(), index_.end(), 0);
  heap_.clear();
  for (uint32_t s = 0; s < entries_.size(); ++s) {
    index_insert(key_hash(entries_[s].key), s);
    heap_.push_back(s);
  }
  for (uint32_t i = 0; i < heap_.size(); ++i) pos_[heap_[i]] = i;
  for (uint32_t i = static_cast<uint32_t>(heap_.size()) / 2; i-- > 0;) sift_down(i);
}

void SpaceSaving::merge(const SpaceSaving& other) {
  // A key missing from one summary may have had up to that summary's minimum there.
  const uint64_t my_min = min_count(), their_min = other.min_count();
  // Scratch reserved at construction: merging (once a minute, on a worker) allocates nothing.
  std::vector<Entry>& all = scratch_;
  all.clear();
  for (const Entry& e : entries_) {
    const uint32_t p = other.find(e.key, key_hash(e.key));
    if (p != UINT32_MAX)
      all.push_back({e.key, e.count + other.entries_[p].count, e.error + other.entries_[p].error});
    else
      all.push_back({e.key, e.count + their_min, e.error + their_min});
  }
  for (const Entry& e : other.entries_)
    if (find(e.key, key_hash(e.key)) == UINT32_MAX)
      all.push_back({e.key, e.count + my_min, e.error + my_min});
  if (all.size() > k_) {
    std::nth_element(all.begin(), all.begin() + k_, all.end(),
                     [](const Entry& a, const Entry& b) { return a.count > b.count; });
    all.resize(k_);
  }
  total_ += other.total_;
  entries_.swap(all);
  rebuild();
}

std::vector<SpaceSaving::Entry> SpaceSaving::top() const {
  std::vector<Entry> out = entries_;
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.count != b.count ? a.count > b.count : a.key.bytes < b.key.bytes;
  });
  return out;
}

}  // namespace strata::clients
