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
  live_[0].number = minute;
}

void TopTalkers::add(const AddressKey& key, uint64_t bytes, int64_t now_ns) {
  const int64_t now_s = floor_div(now_ns, 1'000'000'000);
  const int64_t minute = floor_div(now_s, 60);
  bool rotated = false;
  if (live_[0].number != minute && minute > live_[0].number) {
    rotate_minute(minute);
    rotated = true;
  }
  Slot& m = live_[0];
  if (m.number == minute) {  // (a request stamped in an earlier minute is not counted)
    const AddressKey prefix = key.prefix(kTopV4Prefix, kTopV6Prefix);
    m.s[0].add(key, 1);
    m.s[1].add(key, bytes);
    m.s[2].add(prefix, 1);
    m.s[3].add(prefix, bytes);
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
