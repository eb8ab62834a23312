// Unique-client windows (see unique.h).
#include "clients/unique.h"

namespace strata::clients {

UniqueCounter::UniqueCounter() : slots_(new Slot[std::size(kWindows) * 2]) {}

void UniqueCounter::open(Slot& s, int64_t number) {
  // Sequence-lock style: readers that copied while we cleared see the number change.
  s.number.store(-1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (Hll& h : s.sketches) h.clear();
  s.number.store(number, std::memory_order_release);
}

void UniqueCounter::enter_second(int64_t now_ns) {
  const int64_t now_s = floor_div(now_ns, 1'000'000'000);
  second_start_ns_ = now_s * 1'000'000'000;
  for (size_t i = 0; i < std::size(kWindows); ++i) {
    const int64_t len = window_seconds(kWindows[i]);
    number_[i] = floor_div(now_s, len);
    start_ns_[i] = number_[i] * len * 1'000'000'000;
  }
}

void UniqueCounter::add(const AddressKey& key, int64_t now_ns, int64_t previous_ns) {
  if (now_ns < second_start_ns_ || now_ns - second_start_ns_ >= 1'000'000'000) enter_second(now_ns);
  const bool v4 = key.is_v4();
  uint64_t hashes[kSketchKindCount];
  bool hashed = false;
  for (size_t i = 0; i < std::size(kWindows); ++i) {
    const int64_t number = number_[i];
    // Seen in this window already: its previous request fell in it (windows are whole
    // seconds, so comparing nanoseconds with the window's bounds is comparing seconds).
    if (previous_ns >= 0 && previous_ns >= start_ns_[i] &&
        previous_ns - start_ns_[i] < window_seconds(kWindows[i]) * 1'000'000'000)
      continue;
    Slot& s = slot(kWindows[i], number);
    if (s.number.load(std::memory_order_relaxed) != number) open(s, number);
    if (!hashed) {
      for (size_t k = 0; k < kSketchKindCount; ++k) {
        if ((kSketchKinds[k].family == base::Family::kV4) != v4) continue;
        const AddressKey p = key.prefix(v4 ? kSketchKinds[k].prefix : 32,
                                        v4 ? 128 : kSketchKinds[k].prefix);
        hashes[k] = hash_for_sketch(p.lo(), p.hi());
      }
      hashed = true;
    }
    for (size_t k = 0; k < kSketchKindCount; ++k)
      if ((kSketchKinds[k].family == base::Family::kV4) == v4) s.sketches[k].add(hashes[k]);
  }
}

bool UniqueCounter::merge_into(Window w, size_t kind, int64_t number, Hll& out) const {
  auto copy = std::make_unique<Hll>();
  return merge_into(w, kind, number, out, *copy);
}

bool UniqueCounter::merge_into(Window w, size_t kind, int64_t number, Hll& out, Hll& copy) const {
  const Slot& s = slot(w, number);
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (s.number.load(std::memory_order_acquire) != number) return false;
    copy.copy_from(s.sketches[kind]);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.number.load(std::memory_order_relaxed) != number) continue;
    out.merge(copy);
    return true;
  }
  return false;
}

void UniqueCounter::restore(Window w, size_t kind, int64_t number, const Hll& sketch) {
  Slot& s = slot(w, number);
  if (s.number.load(std::memory_order_relaxed) != number) open(s, number);
  s.sketches[kind].merge(sketch);
}

}  // namespace strata::clients
