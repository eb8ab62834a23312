// The server side of interleaved mode (RFC 9769, as chrony serves it): for each reply that an
// interleaved request may follow, the receive timestamp it carried (the key: an interleaved
// client copies it into its next request's origin field) and the transmit timestamp it really
// left with, the kernel's (SO_TIMESTAMPING, read back from the error queue) or, until that
// comes or when none comes, the daemon's. The next request finds it by its origin and gets it
// as its reply's transmit timestamp; an entry serves once.
//
// One table per worker, beside the worker's client table: steering sends every request of a
// source prefix to one worker (io/steering.h), so the worker that answered a client's last
// request holds its entry, whatever source port the client used. Only replies to requests that
// look interleaved (origin's lowest bit set: one of our marked receive timestamps) are saved,
// so basic clients cost nothing here.
//
// Memory is fixed at construction: 16-octet entries in 4-way buckets of one cache line; an
// entry may sit in either of two buckets picked by a hash of its receive timestamp (two
// choices keep a table 80% full nearly loss-free); when both are full the oldest of their
// eight entries gives way. Each
// entry carries 16 bits of a hash of the client's address, so a reply's timestamp is only
// ever handed to the address it was sent to. No allocation, no lock: one worker's.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/net.h"

namespace strata::clients {

class InterleaveTable {
 public:
  static constexpr size_t kWays = 4;

  // At least `entries` (rounded up to a power-of-two number of buckets; 0 is one bucket).
  explicit InterleaveTable(size_t entries);

  // Saves the reply to `peer` that carried receive timestamp `rx` (NTP format, lowest bit set)
  // and transmit timestamp `tx` (the daemon's, or the one that went out). A receive timestamp
  // already held makes both unusable: a client must never get another reply's transmit time.
  // kDuplicate then; kRefused when tx - rx is outside [0, 0.5 s); kEvicted when a usable
  // entry gave way (the table is too small for the interleaved clients).
  enum class Saved : uint8_t { kNew, kEvicted, kDuplicate, kRefused };
  Saved save(uint64_t rx, uint64_t tx, const base::IpAddress& peer);
  // The kernel's transmit timestamp of the reply that carried `rx` to `peer`. Returns whether
  // an entry took it (false: none held, already served, or tx before rx or 0.5 s after).
  bool set_kernel_tx(uint64_t rx, uint64_t tx, const base::IpAddress& peer);
  // Forgets the reply that carried `rx` (it was not sent).
  void forget(uint64_t rx, const base::IpAddress& peer);

  struct Held {
    uint64_t tx = 0;
    bool kernel = false;  // the kernel's transmit timestamp, not the daemon's
  };
  // For an interleaved request from `peer` whose origin is `rx`: the transmit timestamp of the
  // reply that carried it, removed (one-shot). Nothing for a duplicate or an unknown origin.
  std::optional<Held> take(uint64_t rx, const base::IpAddress& peer);

  size_t capacity() const { return buckets_.size() * kWays; }
  // Entries in use (any thread may read it).
  size_t held() const { return held_.load(std::memory_order_relaxed); }
  // Octets of memory the table holds.
  size_t memory_bytes() const { return buckets_.size() * sizeof(Bucket); }

  static uint16_t tag(const base::IpAddress& peer);

 private:
  enum Flags : uint8_t { kUsed = 1, kKernel = 2, kDuplicate = 4 };
  struct Entry {
    uint64_t rx = 0;
    int32_t delta = 0;  // tx - rx, in 2^-32 s
    uint16_t tag = 0;
    uint8_t flags = 0;
    uint8_t unused = 0;
  };
  static_assert(sizeof(Entry) == 16);
  struct alignas(64) Bucket {
    std::array<Entry, kWays> ways;
  };

  // The two buckets an entry may sit in (the same one in a one-bucket table).
  std::array<Bucket*, 2> buckets(uint64_t rx) {
    const uint64_t h = rx * 0x9e3779b97f4a7c15ULL;
    return {&buckets_[(h >> 32) & mask_], &buckets_[(h >> 8) & mask_]};
  }
  // The entry holding `rx` if `peer` may use it (not a duplicate, its address's tag).
  Entry* find(uint64_t rx, const base::IpAddress& peer);
  void clear(Entry& e);

  std::vector<Bucket> buckets_;
  uint64_t mask_ = 0;
  std::atomic<size_t> held_{0};  // written by the owning worker only
};

}  // namespace strata::clients
