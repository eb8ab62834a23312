// Unique clients per minute, hour and day, per family and prefix length, in HyperLogLog
// sketches (clients/hll.h). Windows are UTC-aligned and tumbling: for each length the
// current one (so far) and the previous complete one are kept, in two slots used
// alternately. Each worker owns one UniqueCounter (steering makes the workers' client sets
// disjoint, but merging sketches is exact for overlaps too); the control thread merges them.
//
// Cost per request: the client table says when a client was last seen, so only a client's
// first request in each window touches the sketches (re-adding is harmless: sketches are
// idempotent, so an evicted-and-back client costs nothing in accuracy).
//
// Memory: 3 windows x 2 slots x 5 sketches x 16 KiB = 480 KiB per worker.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "base/net.h"
#include "clients/address_key.h"
#include "clients/hll.h"

namespace strata::clients {

enum class Window : uint8_t { kMinute, kHour, kDay };
inline constexpr Window kWindows[] = {Window::kMinute, Window::kHour, Window::kDay};
inline constexpr int64_t window_seconds(Window w) {
  return w == Window::kMinute ? 60 : w == Window::kHour ? 3600 : 86400;
}
// Division rounding down (towards minus infinity): window numbers of times before 1970 too.
inline constexpr int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}
inline constexpr const char* window_name(Window w) {
  return w == Window::kMinute ? "1m" : w == Window::kHour ? "1h" : "1d";
}

// What one sketch counts: distinct addresses (or prefixes of a length) of one family.
struct SketchKind {
  base::Family family;
  int prefix;
  const char* name;
};
inline constexpr SketchKind kSketchKinds[] = {
    {base::Family::kV4, 32, "v4"},     {base::Family::kV4, 24, "v4/24"},
    {base::Family::kV6, 128, "v6"},    {base::Family::kV6, 64, "v6/64"},
    {base::Family::kV6, 48, "v6/48"},
};
inline constexpr size_t kSketchKindCount = std::size(kSketchKinds);

class UniqueCounter {
 public:
  UniqueCounter();
  UniqueCounter(const UniqueCounter&) = delete;
  UniqueCounter& operator=(const UniqueCounter&) = delete;

  // Worker: a request from `key` at `now_ns`; `previous_ns` is the client's previous
  // request (from the client table), or -1 when unknown.
  void add(const AddressKey& key, int64_t now_ns, int64_t previous_ns);

  // Any thread: merges the sketch of `kind` for window number `number` (unix seconds /
  // window length) into `out`. False when this worker has none for that window.
  bool merge_into(Window w, size_t kind, int64_t number, Hll& out) const;
  // The same with the consistent copy made in `copy` (a reader that merges every second
  // allocates nothing).
  bool merge_into(Window w, size_t kind, int64_t number, Hll& out, Hll& copy) const;

  // Before the worker starts: puts a saved sketch back (state kept across a restart).
  void restore(Window w, size_t kind, int64_t number, const Hll& sketch);

 private:
  struct Slot {
    std::atomic<int64_t> number{-1};  // window number held; -1 while being cleared
    std::array<Hll, kSketchKindCount> sketches;
  };
  Slot& slot(Window w, int64_t number) {
    return slots_[static_cast<size_t>(w) * 2 + static_cast<size_t>(number & 1)];
  }
  const Slot& slot(Window w, int64_t number) const {
    return slots_[static_cast<size_t>(w) * 2 + static_cast<size_t>(number & 1)];
  }
  void open(Slot& s, int64_t number);
  // The windows of the second `second_start_ns_` belongs to, worked out once per second
  // (64-bit divisions cost more than the rest of add()).
  void enter_second(int64_t now_ns);

  std::unique_ptr<Slot[]> slots_;
  int64_t second_start_ns_ = INT64_MAX;  // none yet
  std::array<int64_t, std::size(kWindows)> number_{};    // window numbers of that second
  std::array<int64_t, std::size(kWindows)> start_ns_{};  // when those windows began
};

}  // namespace strata::clients
