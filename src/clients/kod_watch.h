// Does KoD work? For each client's first KoD RATE the worker notes when it came, how many
// requests the client had sent and since when; reading the client's record later gives its
// rate after the KoD. A fixed ring (the most recent 4,096 first-KoDs per worker), written
// under a mutex the worker only try-locks (a busy reader costs a lost sample, counted, never
// a wait), read by the control thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "clients/address_key.h"

namespace strata::clients {

struct KodWatchEntry {
  AddressKey key;
  int64_t first_ns = 0;  // the client's first request
  int64_t kod_ns = 0;    // its first KoD
  uint32_t count_at_kod = 0;  // requests up to and including the one KoD'd
  uint32_t slot = 0;          // its client-table slot (the reader checks the address)
};

class KodWatch {
 public:
  explicit KodWatch(size_t capacity = 4096) : ring_(capacity) {}

  void record(const KodWatchEntry& e) {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    ring_[next_ % ring_.size()] = e;
    ++next_;
  }

  // The entries, oldest first.
  std::vector<KodWatchEntry> snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<KodWatchEntry> out;
    const size_t n = std::min<size_t>(next_, ring_.size());
    for (size_t i = next_ - n; i < next_; ++i) out.push_back(ring_[i % ring_.size()]);
    return out;
  }
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mutex_;
  std::vector<KodWatchEntry> ring_;
  size_t next_ = 0;
  std::atomic<uint64_t> skipped_{0};
};

}  // namespace strata::clients
