// Top talkers per minute, hour and day: Space-Saving summaries (clients/space_saving.h) by
// requests and by bytes, per address and per prefix (IPv4 /24, IPv6 /48). The worker adds
// every request to the current minute's four summaries only; when a minute ends it is merged
// into its hour and its day. The control thread reads copies the worker publishes about
// once a second (and at every rotation) under a mutex the worker only ever try-locks, so the
// packet path never waits.
//
// The current minute's summaries are filtered (Filtered Space-Saving, space_saving.h): a
// source not among the top k costs a counter increment, not a replacement.
//
// Memory: k = 512 entries x 4 summaries x (1 minute + 2 hours + 2 days + the minute before)
// x 2 (live and published), about 1.2 MiB per worker, plus 4 x 128 KiB of filter counters
// (kTopFilterCounters; docs/performance.md says what smaller filters cost).
#pragma once

#include <array>
#include <mutex>

#include "clients/space_saving.h"
#include "clients/unique.h"

namespace strata::clients {

enum class TopKind : uint8_t { kAddressRequests, kAddressBytes, kPrefixRequests, kPrefixBytes };
inline constexpr int kTopV4Prefix = 24;
// Counters of each filter of the current minute's summaries (Filtered Space-Saving).
inline constexpr uint32_t kTopFilterCounters = 32768;
inline constexpr int kTopV6Prefix = 48;

class TopTalkers {
 public:
  explicit TopTalkers(uint32_t k = 512);

  // Worker: one request of `bytes` (IP level) from `key` at `now_ns`.
  void add(const AddressKey& key, uint64_t bytes, int64_t now_ns);

  // Worker, when idle (a receive timed out): publishes what the last second added, so the
  // view is complete within a receive timeout after traffic stops.
  // At most every 200 ms (an idle busy-polling worker calls it all the time).
  void flush(int64_t now_ns);

  // Any thread: adds this worker's summary of `kind` for window `w` number `number` (as
  // last published) to `out`. For the current hour or day, the current minute is included.
  // False when there is none.
  bool merge_into(Window w, int64_t number, TopKind kind, SpaceSaving& out) const;

 private:
  struct Slot {
    int64_t number = -1;
    std::array<SpaceSaving, 4> s;
    explicit Slot(uint32_t k) : s{SpaceSaving(k), SpaceSaving(k), SpaceSaving(k), SpaceSaving(k)} {}
  };
  // [0]: the current minute, [1]: the previous minute, [2], [3]: hours, [4], [5]: days.
  using Slots = std::array<Slot, 6>;
  static Slots make_slots(uint32_t k);
  static size_t index(Window w, int64_t number);
  void rotate_minute(int64_t minute);
  void publish(int64_t now_s);

  Slots live_;
  std::array<SpaceSavingFilter, 4> filters_{SpaceSavingFilter(kTopFilterCounters),
                                             SpaceSavingFilter(kTopFilterCounters),
                                             SpaceSavingFilter(kTopFilterCounters),
                                             SpaceSavingFilter(kTopFilterCounters)};  // of live_[0]
  // The second and minute of the last request, worked out once per second.
  int64_t second_start_ns_ = INT64_MAX;
  int64_t second_ = 0;
  int64_t minute_ = 0;
  int64_t last_publish_s_ = -1;
  bool dirty_ = false;  // added to since the last publish
  int64_t last_flush_ns_ = 0;
  mutable std::mutex published_mutex_;
  Slots published_;
};

}  // namespace strata::clients
