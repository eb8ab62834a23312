// Top talkers (see top.h).
#include "clients/top.h"

namespace strata::clients {

TopTalkers::Slots TopTalkers::make_slots(uint32_t k) {
  return {Slot(k), Slot(k), Slot(k), Slot(k), Slot(k), Slot(k)};
}

TopTalkers::TopTalkers(uint32_t k) : live_(make_slots(k)), published_(make_slots(k)) {}

size_t TopTalkers::index(Window w, int64_t number) {
  switch (w) {
    case Window::kMinute: return 0;  // callers look up the minute by number below
    case Window::kHour: return 2 + static_cast<size_t>(number & 1);
    case Window::kDay: return 4 + static_cast<size_t>(number & 1);
  }
  return 0;
}

void TopTalkers::rotate_minute(int64_t minute) {
  Slot& current = live_[0];
  if (current.number >= 0) {
    // The finished minute goes into its hour and its day, and becomes "the previous minute".
    for (Window w : {Window::kHour, Window::kDay}) {
      const int64_t number = floor_div(current.number * 60, window_seconds(w));
      Slot& target = live_[index(w, number)];
      if (target.number != number) {
        for (auto& s : target.s) s.clear();
        target.number = number;
      }
      for (size_t i = 0; i < 4; ++i) target.s[i].merge(current.s[i]);
    }
    std::swap(live_[0], live_[1]);
  }
  for (auto& s : live_[0].s) s.clear();
  for (auto& f : filters_) f.clear();
  live_[0].number = minute;
}

void TopTalkers::add(const AddressKey& key, uint64_t bytes, int64_t now_ns) {
  if (now_ns < second_start_ns_ || now_ns - second_start_ns_ >= 1'000'000'000) {
    second_ = floor_div(now_ns, 1'000'000'000);
    second_start_ns_ = second_ * 1'000'000'000;
    minute_ = floor_div(second_, 60);
  }
  const int64_t now_s = second_;
  const int64_t minute = minute_;
  bool rotated = false;
  if (live_[0].number != minute && minute > live_[0].number) {
    rotate_minute(minute);
    rotated = true;
  }
  Slot& m = live_[0];
  if (m.number == minute) {  // (a request stamped in an earlier minute is not counted)
    const AddressKey prefix = key.prefix(kTopV4Prefix, kTopV6Prefix);
    // One hash per key for its two summaries (they must be Space-Saving's own hash: the
    // summaries' index is built with it).
    const uint64_t key_hash = SpaceSaving::hash_of(key);
    const uint64_t prefix_hash = SpaceSaving::hash_of(prefix);
    m.s[0].add(key, key_hash, 1, &filters_[0]);
    m.s[1].add(key, key_hash, bytes, &filters_[1]);
    m.s[2].add(prefix, prefix_hash, 1, &filters_[2]);
    m.s[3].add(prefix, prefix_hash, bytes, &filters_[3]);
    dirty_ = true;
  }
  if (rotated || now_s != last_publish_s_) publish(now_s);
}

void TopTalkers::flush(int64_t now_ns) {
  if (!dirty_ || now_ns - last_flush_ns_ < 200'000'000) return;
  last_flush_ns_ = now_ns;
  publish(last_publish_s_);
}

void TopTalkers::publish(int64_t now_s) {
  std::unique_lock<std::mutex> lock(published_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // the control thread is copying: next second
  for (size_t i = 0; i < live_.size(); ++i) {
    published_[i].number = live_[i].number;
    for (size_t k = 0; k < 4; ++k) published_[i].s[k] = live_[i].s[k];
  }
  last_publish_s_ = now_s;
  dirty_ = false;
}

bool TopTalkers::merge_into(Window w, int64_t number, TopKind kind, SpaceSaving& out) const {
  std::lock_guard<std::mutex> lock(published_mutex_);
  const size_t k = static_cast<size_t>(kind);
  bool any = false;
  auto take = [&](const Slot& s) {
    out.merge(s.s[k]);
    any = true;
  };
  if (w == Window::kMinute) {
    for (size_t i : {size_t{0}, size_t{1}})
      if (published_[i].number == number) take(published_[i]);
    return any;
  }
  const Slot& slot = published_[index(w, number)];
  if (slot.number == number) take(slot);
  // The minute in progress (and the previous one, if not yet rotated in) belong to it too.
  const Slot& minute = published_[0];
  if (minute.number >= 0 && floor_div(minute.number * 60, window_seconds(w)) == number) take(minute);
  return any;
}

}  // namespace strata::clients
