// One worker's view of its clients: the client table (statistics per address) and the rate
// limiter (state per prefix), updated together for each request that passed the format
// checks. The worker owns it; the control thread reads table() concurrently.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "base/net.h"
#include "clients/client_table.h"
#include "clients/kod_watch.h"
#include "clients/limiter.h"
#include "clients/top.h"
#include "clients/unique.h"

namespace strata::clients {

struct TrackerOptions {
  TableOptions table;
  uint32_t prefix_capacity = 1024;
  LimitParams limits;
  uint64_t seed = 1;  // hashing and the leak's random draws
};

// How the memory budget of one worker splits between the tables: four fifths for client
// records, one fifth for limiter prefixes (active prefixes only, see limiter.h).
TrackerOptions size_for_memory(size_t bytes, TrackerOptions base);

struct Observation {
  Verdict verdict = Verdict::kPass;
  bool tracked = true;          // false: the table is full of protected records
  bool created = false;         // first request of a new client record
  bool evicted = false;         // a client record was evicted to make room
  bool prefix_evicted = false;  // a prefix still holding limiter state was evicted
  int64_t gap_ns = -1;          // time since the client's previous request; -1 unknown
};

// What the access rules say about a request's source.
enum class Treatment : uint8_t {
  kLimited,    // the rate limiter decides
  kUnlimited,  // always served (nolimit, or limiting switched off)
  kDenied,     // refused: a KoD DENY, paced like RATE KoDs, else a silent drop
  // A dynamic block (policy/blocks.h) covers the source, with its action:
  kBlockedDrop,  // dropped
  kBlockedKod,   // a KoD RATE, paced and never to a flood as the limiter's, else dropped
  kBlockedLeak,  // the limiter's leak share answered, the rest dropped
};
inline bool blocked(Treatment t) { return t >= Treatment::kBlockedDrop; }

class Tracker {
 public:
  explicit Tracker(const TrackerOptions& options);

  // One request from `peer` that arrived on `local`, at kernel receive time `now_ns`, under
  // the limits in force now (a reload can change them; options().limits is the start value).
  // `bytes`: the request's size at the IP level, for the top talkers by bytes.
  // `request_flags`: ClientFlags the request itself has (kFlagNts), stored with the outcome.
  Observation observe(const base::IpAddress& peer, const base::IpAddress& local, uint8_t mode,
                      uint8_t version, int64_t now_ns, const LimitParams& limits,
                      Treatment treatment = Treatment::kLimited, uint32_t bytes = 76,
                      uint8_t request_flags = 0);
  Observation observe(const base::IpAddress& peer, const base::IpAddress& local, uint8_t mode,
                      uint8_t version, int64_t now_ns) {
    return observe(peer, local, mode, version, now_ns, options_.limits,
                   options_.limits.enabled ? Treatment::kLimited : Treatment::kUnlimited);
  }

  // Before observing a receive batch: the sources of its requests (`address_of(i)` for i <
  // n, the first kPrepareMax of them) under the limits in force. Prefetches, in passes over
  // the batch, the lines observe() will read: the client table's buckets, the records, the
  // records of their limiter prefixes (through each record's hint, or the prefix table's
  // buckets). A batch's cache misses then overlap instead of following one another
  // (docs/performance.md). Only hints: observe() is right without it.
  static constexpr size_t kPrepareMax = 64;
  template <class AddressOf>
  void prepare(size_t n, AddressOf address_of, const LimitParams& limits) {
    n = std::min(n, kPrepareMax);
    for (size_t i = 0; i < n; ++i) {
      prepared_[i].key = AddressKey::from(address_of(i));
      prepared_[i].hash = table_.hash(prepared_[i].key);
    }
    prefetch_prepared(n, limits);
  }

  // The worker had nothing to do for a while: publish pending statistics.
  void idle(int64_t now_ns) { top_.flush(now_ns); }

  const ClientTable& table() const { return table_; }
  const PrefixTable& prefixes() const { return prefixes_; }
  const UniqueCounter& unique() const { return unique_; }
  const TopTalkers& top() const { return top_; }
  const KodWatch& kod_watch() const { return kod_watch_; }
  UniqueCounter& unique() { return unique_; }
  const TrackerOptions& options() const { return options_; }

 private:
  uint64_t next_random();
  void prefetch_prepared(size_t n, const LimitParams& limits);

  struct Prepared {
    AddressKey key;
    uint64_t hash;  // the client's in the table, then its prefix's (0: found by the hint)
    uint32_t slot;  // client record (its tag matched), or kNone
  };
  std::array<Prepared, kPrepareMax> prepared_{};

  TrackerOptions options_;
  ClientTable table_;
  PrefixTable prefixes_;
  UniqueCounter unique_;
  TopTalkers top_;
  KodWatch kod_watch_;
  uint64_t rng_;
};

}  // namespace strata::clients
