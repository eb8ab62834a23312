// Rate limiting by prefix: a token bucket with chrony's interval and burst, ntpd's minimum
// spacing between two requests of one address, a random leak so a spoofed victim is never
// cut off completely, and Kiss-o'-Death RATE replies that are themselves rate-limited and
// never sent to a source whose request rate looks like a flood (a KoD would then reflect
// traffic onto a spoofed address).
//
// State lives per prefix (v4_prefix / v6_prefix bits of the source address) in a fixed-size
// LRU table owned by one worker. A prefix silent for burst x interval has a full bucket
// again, so evicting it loses nothing: the table only needs to hold the prefixes active in
// the last minute or so, not every client ever seen.
#pragma once

#include <cstdint>
#include <vector>

#include "clients/address_key.h"
#include "clients/lru_index.h"
#include "clients/zeroed_array.h"

namespace strata::clients {

struct LimitParams {
  bool enabled = true;
  int v4_prefix = 32;
  int v6_prefix = 64;
  double interval_s = 8.0;      // one token per interval: the long-run allowed request spacing
  double burst = 8.0;           // bucket size, and what a new prefix starts with
  double min_spacing_s = 0.25;  // two requests of one address closer than this: over the limit
  double leak = 0.05;           // share of over-limit requests answered anyway
  bool kod = true;              // answer some over-limit requests with KoD RATE
  double kod_interval_s = 8.0;  // at most one KoD per prefix per this many seconds
  double flood_rate = 4.0;      // requests/s (decayed over score_decay_s) above which no KoD
  double score_decay_s = 20.0;  // time constant of the request-rate score (NTPsec's burst)

  // The poll exponent a KoD asks for at least: log2 of the interval, rounded up (chrony).
  int8_t kod_poll() const {
    int8_t e = 0;
    while (e < 17 && double(int64_t{1} << e) < interval_s) ++e;
    return e;
  }
};

enum class Verdict : uint8_t {
  kPass,  // within the limit
  kLeak,  // over the limit, answered anyway (random leak)
  kKod,   // over the limit, answer with KoD RATE
  kDrop,  // over the limit, drop silently
};

// The limiter state of one prefix (also what the statistical tests drive directly).
struct PrefixState {
  int64_t last_ns = 0;
  int64_t last_kod_ns = INT64_MIN;
  float tokens = 0;
  float score = 0;  // decayed request rate, requests/s
};

// A new prefix: a full bucket (unless it replaces an active one in a full table: then it
// takes over that one's state, see PrefixTable::find_or_create).
PrefixState fresh_state(const LimitParams& p, int64_t now_ns);

// Whether an over-limit request is let through by the leak: a uniform draw in [0, 1) from
// `random` (64 uniformly random bits) below `p.leak`.
inline bool leaks(const LimitParams& p, uint64_t random) {
  return static_cast<double>(random >> 11) * 0x1.0p-53 < p.leak;
}

// One request of a prefix at `now_ns`. `address_gap_ns`: time since the same address's
// previous request, or -1 when unknown. `random`: 64 uniformly random bits.
Verdict limit(PrefixState& s, const LimitParams& p, int64_t now_ns, int64_t address_gap_ns,
              uint64_t random);

// A request from a denied source: kKod when a KoD DENY may go out now (the same pacing and
// flood rule as RATE KoDs), else kDrop. Updates the rate score and KoD time.
Verdict deny(PrefixState& s, const LimitParams& p, int64_t now_ns);

// Bytes of memory one prefix slot costs (its 64-octet line and its share of the buckets,
// rounded up; lru_index.h).
inline constexpr size_t kPrefixSlotBytes = 77;

class PrefixTable {
 public:
  static constexpr uint32_t kNone = LruIndex::kNone;
  PrefixTable(uint32_t capacity, uint64_t seed);

  struct Lookup {
    PrefixState* state = nullptr;
    bool created = false;
    bool evicted_active = false;  // the evicted prefix still had limiter state worth keeping
  };
  // The state of `prefix`, made fresh (and made room for, evicting the least recently seen
  // prefix) when absent. `hint`, when given: where the caller last found this prefix (slot +
  // 1, 0 unknown), tried before the hash index and updated.
  Lookup find_or_create(const AddressKey& prefix, const LimitParams& p, int64_t now_ns,
                        uint32_t* hint = nullptr);
  uint32_t capacity() const { return index_.capacity(); }
  uint32_t size() const { return index_.size(); }
  size_t memory_bytes() const;

  // Prefetching for a batch (see Tracker::prepare): hints, never needed for a right answer.
  uint64_t hash(const AddressKey& prefix) const { return hash_key(prefix, seed_); }
  void prefetch_bucket(uint64_t hash) const { index_.prefetch_bucket(hash); }
  uint32_t prefetch_record(uint64_t hash) const { return index_.prefetch_slot(hash); }
  void prefetch_line(uint32_t slot) const { index_.prefetch_line(slot); }

 private:
  struct Record {
    AddressKey key;
    PrefixState state;
    uint32_t live;  // 1 while indexed (a hint may name a slot freed since)
  };
  static_assert(sizeof(Record) <= 48);

  Lookup found(uint32_t slot, uint32_t* hint);

  uint64_t seed_;
  LruIndexT<Record> index_;
};

}  // namespace strata::clients
