// Client table (see client_table.h).
#include "clients/client_table.h"

#include <algorithm>
#include <cstring>

namespace strata::clients {

namespace {

template <class T>
void relaxed_store(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}

template <class T>
T relaxed_load(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

}  // namespace

ClientTable::ClientTable(const TableOptions& options, uint64_t seed)
    : options_(options),
      seed_(seed),
      index_(std::max<uint32_t>(options.capacity, 1)),
      locals_(kMaxLocals) {}

size_t ClientTable::memory_bytes() const {
  return index_.memory_bytes() + locals_.size() * sizeof(base::IpAddress);
}

AddressKey ClientTable::key_of(uint32_t slot) const {
  AddressKey k;
  std::memcpy(k.bytes.data(), &rec(slot).key_lo, 8);
  std::memcpy(k.bytes.data() + 8, &rec(slot).key_hi, 8);
  return k;
}

void ClientTable::store(uint32_t slot, const Record& r) {
  // Sequence-lock write: odd while the fields change, even again after.
  Record& d = rec(slot);
  const uint16_t seq = d.seq;
  std::atomic_ref<uint16_t>(d.seq).store(static_cast<uint16_t>(seq + 1), std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  relaxed_store(d.key_lo, r.key_lo);
  relaxed_store(d.key_hi, r.key_hi);
  relaxed_store(d.first_ns, r.first_ns);
  relaxed_store(d.last_ns, r.last_ns);
  relaxed_store(d.count, r.count);
  relaxed_store(d.drops, r.drops);
  relaxed_store(d.kods, r.kods);
  relaxed_store(d.local, r.local);
  relaxed_store(d.mode_version, r.mode_version);
  relaxed_store(d.flags, r.flags);
  std::atomic_ref<uint16_t>(d.seq).store(static_cast<uint16_t>(seq + 2), std::memory_order_release);
}

bool ClientTable::read(uint32_t slot, ClientSnapshot& out) const {
  const Record& r = rec(slot);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const uint16_t s1 =
        std::atomic_ref<uint16_t>(const_cast<uint16_t&>(r.seq)).load(std::memory_order_acquire);
    if (s1 & 1) continue;
    Record c{};
    c.key_lo = relaxed_load(r.key_lo);
    c.key_hi = relaxed_load(r.key_hi);
    c.first_ns = relaxed_load(r.first_ns);
    c.last_ns = relaxed_load(r.last_ns);
    c.count = relaxed_load(r.count);
    c.drops = relaxed_load(r.drops);
    c.kods = relaxed_load(r.kods);
    c.local = relaxed_load(r.local);
    c.mode_version = relaxed_load(r.mode_version);
    c.flags = relaxed_load(r.flags);
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint16_t s2 =
        std::atomic_ref<uint16_t>(const_cast<uint16_t&>(r.seq)).load(std::memory_order_relaxed);
    if (s1 != s2) continue;
    if (c.count == 0) return false;
    AddressKey k;
    std::memcpy(k.bytes.data(), &c.key_lo, 8);
    std::memcpy(k.bytes.data() + 8, &c.key_hi, 8);
    out.address = k.address();
    const uint16_t n = local_count_.load(std::memory_order_acquire);
    out.local = c.local < n ? locals_[c.local] : base::IpAddress{};
    if (c.local >= n) out.local.family = out.address.family;
    out.first_ns = c.first_ns;
    out.last_ns = c.last_ns;
    out.count = c.count;
    out.drops = c.drops;
    out.kods = c.kods;
    out.mode = c.mode_version & 7;
    out.version = static_cast<uint8_t>(c.mode_version >> 3);
    out.flags = c.flags;
    return true;
  }
  return false;
}

ClientTable::Lookup ClientTable::find_or_create(const AddressKey& key, int64_t now_ns) {
  Lookup l;
  const uint64_t hash = hash_key(key, seed_);
  const uint64_t lo = key.lo(), hi = key.hi();
  l.slot = index_.find(hash, [&](uint32_t s) {
    return rec(s).key_lo == lo && rec(s).key_hi == hi;
  });
  if (l.slot != kNone) {
    l.previous_ns = rec(l.slot).last_ns;
    index_.reference(l.slot);
    return l;
  }
  if (index_.full()) {
    // ntpd's MRU rules in bytes: the newest `mindepth` records and those seen within
    // `maxage` stay; otherwise the oldest makes room (the least recently used with a second
    // chance, lru_index.h). A protected oldest means the request is served but not tracked.
    const uint32_t oldest = index_.candidate();
    const bool young = now_ns - rec(oldest).last_ns < options_.maxage_ns;
    if (young || index_.size() <= options_.mindepth) return l;  // slot kNone: untracked
    index_.remove(oldest, hash_key(key_of(oldest), seed_));
    l.evicted = true;
  }
  l.slot = index_.insert(hash);
  l.created = true;
  Record r{};
  r.local = kNoLocal;
  r.key_lo = lo;
  r.key_hi = hi;
  r.first_ns = now_ns;
  r.last_ns = now_ns;
  r.seq = rec(l.slot).seq;
  store(l.slot, r);  // (insert() zeroed the hint)
  size_.store(index_.size(), std::memory_order_relaxed);
  // Slots are handed out from 0 upwards (then reused): readers need not look past this.
  if (l.slot >= used_.load(std::memory_order_relaxed)) used_.store(l.slot + 1, std::memory_order_release);
  return l;
}

void ClientTable::record(uint32_t slot, int64_t now_ns, uint8_t mode, uint8_t version,
                         uint16_t local, uint8_t flags, bool dropped) {
  Record r = rec(slot);
  r.last_ns = std::max(r.last_ns, now_ns);
  if (r.count != UINT32_MAX) ++r.count;
  r.mode_version = static_cast<uint8_t>((version & 7) << 3 | (mode & 7));
  r.local = local;
  r.flags = flags;
  if (dropped && r.drops != UINT32_MAX) ++r.drops;
  if ((flags & kFlagKod) && r.kods != UINT16_MAX) ++r.kods;
  store(slot, r);
}

uint16_t ClientTable::local_index(const base::IpAddress& local) {
  const uint16_t n = local_count_.load(std::memory_order_relaxed);
  if (last_local_ < n && locals_[last_local_] == local) return last_local_;
  for (uint16_t i = 0; i < n; ++i) {
    if (locals_[i] == local) {
      last_local_ = i;
      return i;
    }
  }
  if (n >= kMaxLocals) return kNoLocal;
  locals_[n] = local;
  local_count_.store(static_cast<uint16_t>(n + 1), std::memory_order_release);
  last_local_ = n;
  return n;
}

}  // namespace strata::clients
