// Request rates per prefix for the dynamic-block rules (see block_meter.h).
#include "clients/block_meter.h"

#include <algorithm>
#include <bit>

namespace strata::clients {

BlockMeter::BlockMeter(uint32_t capacity, uint64_t seed)
    : sets_(std::bit_ceil(std::max<uint32_t>(capacity, 16) / kWays)), seed_(seed) {
  tables_.reserve(kMaxBlockRules);
  for (size_t r = 0; r < kMaxBlockRules; ++r) tables_.emplace_back(sets_);
}

namespace {

constexpr int kTickShift = 20;  // 2^20 ns a tick

uint32_t tick_of(int64_t ns) { return static_cast<uint32_t>(static_cast<uint64_t>(ns) >> kTickShift); }

// The window of `e` moved up to tick `now`: the current count becomes the previous one after
// one window, both are gone after two.
template <class Entry>
void advance(Entry& e, uint32_t now, uint32_t window) {
  const uint32_t since = now - e.start;
  if (since >= 0x80000000u || since < window) return;  // (a request slightly out of order)
  if (since < 2 * window) {
    e.prev = e.count;
    e.start += window;
  } else {
    e.prev = 0;
    e.start = now;
  }
  e.count = 0;
  e.said = 0;
}

template <class Entry>
double sliding(const Entry& e, uint32_t now, uint32_t window) {
  const uint32_t since = now - e.start;
  const double into = since >= 0x80000000u ? 0.0 : std::min(1.0, static_cast<double>(since) / window);
  return e.prev * (1.0 - into) + e.count;
}

uint32_t window_ticks(const MeterRule& rule) {
  return std::max<uint32_t>(1, static_cast<uint32_t>(rule.window_ns >> kTickShift));
}

}  // namespace

bool BlockMeter::count(size_t r, const AddressKey& address, int64_t now_ns, const MeterRule& rule, uint32_t epoch,
                       BlockEvent& out) {
  const AddressKey key = address.prefix(rule.v4_prefix, rule.v6_prefix);
  Set& set = tables_[r][set_of(key, r)];
  const uint32_t now = tick_of(now_ns), window = window_ticks(rule);
  const auto ep = static_cast<uint16_t>(epoch);
  Entry* e = nullptr;
  for (Entry& w : set.way)
    if (w.live != 0 && w.key == key) e = &w;
  if (e != nullptr && e->epoch != ep) *e = Entry{key, now, 0, 0, ep, 0, 1};
  if (e == nullptr) {
    // The way to give up: an empty one, one of an older rule set, else the lowest estimate.
    double lowest = 0;
    for (Entry& w : set.way) {
      if (w.live == 0 || w.epoch != ep) {
        e = &w;
        break;
      }
      Entry probe = w;
      advance(probe, now, window);
      const double est = sliding(probe, now, window);
      if (e == nullptr || est < lowest) {
        e = &w;
        lowest = est;
      }
    }
    *e = Entry{key, now, 0, 0, ep, 0, 1};
  }
  advance(*e, now, window);
  ++e->count;
  const double requests = sliding(*e, now, window);
  if (requests >= rule.trigger && (e->said & 2) == 0) {
    e->said |= 3;  // a trigger says more than the warning would
    out.prefix = key;
    out.at_ns = now_ns;
    out.requests = static_cast<float>(requests);
    out.warning = false;
    return true;
  }
  if (rule.warn > 0 && requests >= rule.warn && (e->said & 1) == 0) {
    e->said |= 1;
    out.prefix = key;
    out.at_ns = now_ns;
    out.requests = static_cast<float>(requests);
    out.warning = true;
    return true;
  }
  return false;
}

double BlockMeter::estimate(size_t r, const AddressKey& address, int64_t now_ns, const MeterRule& rule) const {
  if (r >= tables_.size()) return 0;
  const AddressKey key = address.prefix(rule.v4_prefix, rule.v6_prefix);
  const Set& set = tables_[r][set_of(key, r)];
  const uint32_t now = tick_of(now_ns), window = window_ticks(rule);
  for (const Entry& w : set.way) {
    if (w.live == 0 || !(w.key == key)) continue;
    Entry probe = w;
    advance(probe, now, window);
    return sliding(probe, now, window);
  }
  return 0;
}

}  // namespace strata::clients
