// Interleaved mode's RX -> TX timestamps (see interleave.h).
#include "clients/interleave.h"

#include <algorithm>
#include <bit>

#include "clients/address_key.h"

namespace strata::clients {

namespace {
// tx - rx in 2^-32 s must fit an int32: up to half a second, far beyond any real send.
constexpr int64_t kMaxDelta = int64_t{1} << 31;

// Wrap-safe tx - rx (NTP eras roll over).
int64_t diff(uint64_t a, uint64_t b) { return static_cast<int64_t>(a - b); }
}  // namespace

InterleaveTable::InterleaveTable(size_t entries) {
  const size_t buckets = std::bit_ceil(std::max<size_t>(1, (entries + kWays - 1) / kWays));
  buckets_.resize(buckets);
  mask_ = buckets - 1;
}

uint16_t InterleaveTable::tag(const base::IpAddress& peer) {
  // Any fixed mixing will do: the tag only tells one address's entries from another's.
  return static_cast<uint16_t>(hash_key(AddressKey::from(peer), 0x5bd1e9955bd1e995ULL) >> 48);
}

InterleaveTable::Entry* InterleaveTable::find(uint64_t rx, const base::IpAddress& peer) {
  for (Bucket* b : buckets(rx))
    for (Entry& e : b->ways)
      if ((e.flags & kUsed) && e.rx == rx)
        return (e.flags & kDuplicate) || e.tag != tag(peer) ? nullptr : &e;
  return nullptr;
}

void InterleaveTable::clear(Entry& e) {
  e = Entry{};
  held_.store(held_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

InterleaveTable::Saved InterleaveTable::save(uint64_t rx, uint64_t tx, const base::IpAddress& peer) {
  const int64_t delta = diff(tx, rx);
  if (delta < 0 || delta >= kMaxDelta) return Saved::kRefused;
  Entry* empty = nullptr;
  Entry* victim = nullptr;  // a duplicate first, else the oldest receive timestamp
  for (Bucket* b : buckets(rx)) for (Entry& e : b->ways) {
    if (!(e.flags & kUsed)) {
      if (empty == nullptr) empty = &e;
      continue;
    }
    if (e.rx == rx) {  // two replies with one receive timestamp: neither may be served
      e.flags |= kDuplicate;
      return Saved::kDuplicate;
    }
    if (victim == nullptr || (e.flags & kDuplicate) > (victim->flags & kDuplicate) ||
        ((e.flags & kDuplicate) == (victim->flags & kDuplicate) && diff(rx, e.rx) > diff(rx, victim->rx)))
      victim = &e;  // wrap-safe age: relative to the new timestamp
  }
  Saved result = Saved::kNew;
  Entry* slot = empty;
  if (slot == nullptr) {
    slot = victim;
    if (!(slot->flags & kDuplicate)) result = Saved::kEvicted;
  } else {
    held_.store(held_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  *slot = Entry{rx, static_cast<int32_t>(delta), tag(peer), kUsed, 0};
  return result;
}

bool InterleaveTable::set_kernel_tx(uint64_t rx, uint64_t tx, const base::IpAddress& peer) {
  Entry* e = find(rx, peer);
  if (e == nullptr) return false;
  const int64_t delta = diff(tx, rx);
  if (delta < 0 || delta >= kMaxDelta) return false;
  e->delta = static_cast<int32_t>(delta);
  e->flags |= kKernel;
  return true;
}

void InterleaveTable::forget(uint64_t rx, const base::IpAddress& peer) {
  if (Entry* e = find(rx, peer)) clear(*e);
}

std::optional<InterleaveTable::Held> InterleaveTable::take(uint64_t rx, const base::IpAddress& peer) {
  Entry* e = find(rx, peer);
  if (e == nullptr) return std::nullopt;
  const Held held{rx + static_cast<uint64_t>(int64_t{e->delta}), (e->flags & kKernel) != 0};
  clear(*e);
  return held;
}

}  // namespace strata::clients
