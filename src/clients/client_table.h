// The client table: one record per client address, in memory fixed at start, with ntpd's
// MRU semantics in bytes. Each worker owns one table (the sockets steer each client to one
// worker, see io/steering.h); the worker is its only writer. The control thread reads the
// records concurrently through a per-record sequence lock, so `strata clients` never stops
// the packet path and never sees a half-written record.
//
// Per record: address, first and last seen (kernel receive times), request count, last mode
// and version, the local address it hit, drops and KoDs sent, and the rate-limit outcome of
// its last request. The average interval is ntpd's (last - first) / (count - 1).
//
// Memory per slot: one 64-octet line (48 octets of record, the tracker's hint, the LRU links
// and reference bit) plus a fifth of a 64-octet hash bucket (lru_index.h). A request of a
// known client reads and writes that line and reads its bucket's, nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "base/net.h"
#include "clients/address_key.h"
#include "clients/lru_index.h"
#include "clients/zeroed_array.h"

namespace strata::clients {

// The outcome of a client's last request, as stored and shown.
enum ClientFlags : uint8_t {
  kFlagLimited = 1,  // over its rate limit (dropped, KoD'd or let through by the leak)
  kFlagKod = 2,      // answered with a KoD
  kFlagLeaked = 4,   // over the limit but answered (the random leak)
  kFlagDenied = 8,   // refused by an access rule (deny)
  kFlagNts = 16,     // the request carried NTS fields (RFC 8915)
  kFlagBlocked = 32, // refused by a dynamic block (policy/blocks.h)
};

struct TableOptions {
  uint32_t capacity = 1024;  // records
  uint32_t mindepth = 600;   // the newest this many records are never evicted
  int64_t maxage_ns = 64'000'000'000;  // records seen this recently are never evicted
};

// A consistent copy of one record, as the control thread sees it.
struct ClientSnapshot {
  base::IpAddress address;
  base::IpAddress local;  // unspecified when unknown
  int64_t first_ns = 0;   // real time, ns since 1970
  int64_t last_ns = 0;
  uint32_t count = 0;
  uint32_t drops = 0;  // requests dropped by the rate limiter
  uint16_t kods = 0;   // KoDs sent (saturates)
  uint8_t mode = 0;
  uint8_t version = 0;
  uint8_t flags = 0;  // ClientFlags of the last request
};

// Bytes of memory one slot costs (its line and its share of the buckets, rounded up), for
// sizing from a memory budget.
inline constexpr size_t kClientSlotBytes = 77;

class ClientTable {
 public:
  static constexpr uint32_t kNone = LruIndex::kNone;
  static constexpr uint16_t kMaxLocals = 256;
  static constexpr uint16_t kNoLocal = 0xffff;

  ClientTable(const TableOptions& options, uint64_t seed);
  ClientTable(const ClientTable&) = delete;
  ClientTable& operator=(const ClientTable&) = delete;

  // --- worker side (single thread) ---
  struct Lookup {
    uint32_t slot = kNone;    // kNone: not tracked (the table is full of protected records)
    bool created = false;     // a new record
    bool evicted = false;     // an old record made room for it
    int64_t previous_ns = 0;  // the record's last-seen time before this request (if !created)
  };
  // Finds the record of `key` or makes one (first = last = now, count 0).
  Lookup find_or_create(const AddressKey& key, int64_t now_ns);
  // Records one request on a slot from find_or_create(): last seen, count, mode, version,
  // local address index, the limiter's outcome (ClientFlags); drops and KoDs counted from it.
  void record(uint32_t slot, int64_t now_ns, uint8_t mode, uint8_t version, uint16_t local,
              uint8_t flags, bool dropped);
  // The owning worker's view of a slot's count, KoDs and first-seen time.
  struct Peek {
    uint32_t count;
    uint16_t kods;
    int64_t first_ns;
  };
  Peek peek(uint32_t slot) const {
    const Record& r = rec(slot);
    return {r.count, r.kods, r.first_ns};
  }
  // The index of a local address, for record(); kNoLocal when more than kMaxLocals were seen.
  uint16_t local_index(const base::IpAddress& local);
  // A word the owner keeps with each record (the tracker: where the client's limiter prefix
  // was last found), zero in a new record. Worker side only.
  uint32_t hint(uint32_t slot) const { return index_.word(slot); }
  void set_hint(uint32_t slot, uint32_t value) { index_.word(slot) = value; }

  // Prefetching for a batch (see Tracker::prepare): hints, never needed for a right answer.
  uint64_t hash(const AddressKey& key) const { return hash_key(key, seed_); }
  void prefetch_bucket(uint64_t hash) const { index_.prefetch_bucket(hash); }
  uint32_t prefetch_record(uint64_t hash) const { return index_.prefetch_slot(hash); }

  // --- any thread ---
  uint32_t capacity() const { return index_.capacity(); }
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  size_t memory_bytes() const;
  // Calls f(const ClientSnapshot&) for every record in use, in no particular order.
  template <class F>
  // Reads the slots ever used only (they are handed out from 0 upwards), not the whole
  // capacity: a scan costs the records in use.
  void for_each(F f) const {
    ClientSnapshot s;
    const uint32_t used = used_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < used; ++i)
      if (read(i, s)) f(s);
  }
  // Reads one slot; false when unused (or changing too fast to copy).
  bool read(uint32_t slot, ClientSnapshot& out) const;

 private:
  // 48 octets. Written only by the owning worker, through store(); read by anyone through
  // read(). seq is odd while a write is in progress.
  // All-zero is an unused slot (count 0).
  struct Record {
    uint64_t key_lo;
    uint64_t key_hi;
    int64_t first_ns;
    int64_t last_ns;
    uint32_t count;  // 0: slot unused
    uint32_t drops;
    uint16_t kods;
    uint16_t local;
    uint8_t mode_version;  // version << 3 | mode
    uint8_t flags;
    uint16_t seq;
  };
  static_assert(sizeof(Record) == 48);

  // A slot's line holds the record and (lru_index.h) the LRU links and the tracker's hint.
  Record& rec(uint32_t slot) { return index_.payload(slot); }
  const Record& rec(uint32_t slot) const { return index_.payload(slot); }
  void store(uint32_t slot, const Record& r);
  AddressKey key_of(uint32_t slot) const;

  TableOptions options_;
  uint64_t seed_;
  LruIndexT<Record> index_;
  std::atomic<size_t> size_{0};
  std::atomic<uint32_t> used_{0};  // one past the highest slot ever used
  // Local addresses by index: append-only; count published with release.
  std::vector<base::IpAddress> locals_;
  std::atomic<uint16_t> local_count_{0};
  uint16_t last_local_ = kNoLocal;  // cache of the last lookup (worker side)
};

}  // namespace strata::clients
