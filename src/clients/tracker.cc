// Per-worker client tracking (see tracker.h).
#include "clients/tracker.h"

namespace strata::clients {

TrackerOptions size_for_memory(size_t bytes, TrackerOptions o) {
  const size_t clients = bytes / 5 * 4 / kClientSlotBytes;
  const size_t prefixes = bytes / 5 / kPrefixSlotBytes;
  o.table.capacity = static_cast<uint32_t>(std::min<size_t>(std::max<size_t>(clients, 16), UINT32_MAX - 1));
  o.prefix_capacity = static_cast<uint32_t>(std::min<size_t>(std::max<size_t>(prefixes, 16), UINT32_MAX - 1));
  return o;
}

Tracker::Tracker(const TrackerOptions& options)
    : options_(options),
      table_(options.table, options.seed),
      prefixes_(options.prefix_capacity, options.seed * 0x9e3779b97f4a7c15ULL + 1),
      rng_(options.seed | 1) {}

uint64_t Tracker::next_random() {
  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1DULL;
}

void Tracker::prefetch_prepared(size_t n, const LimitParams& p) {
  // One software pipeline over the batch, three stages kStage requests apart: request i's
  // bucket was prefetched (prepare()), then request i - kStage's bucket is read for its
  // record, and request i - 2 kStage's record for its prefix (through the hint, or the
  // prefix bucket, whose record is read a stage later). Each line then has a stage's time to
  // arrive before it is read (8, 12, 16 and 21 measured alike at a million clients).
  constexpr size_t kStage = 16;
  for (size_t i = 0; i < n + 3 * kStage; ++i) {
    if (i < n) table_.prefetch_bucket(prepared_[i].hash);
    if (i >= kStage && i - kStage < n) {
      Prepared& r = prepared_[i - kStage];
      r.slot = table_.prefetch_record(r.hash);
    }
    if (i >= 2 * kStage && i - 2 * kStage < n) {
      Prepared& r = prepared_[i - 2 * kStage];
      const uint32_t hint = r.slot != ClientTable::kNone ? table_.hint(r.slot) : 0;
      if (hint != 0) {
        prefixes_.prefetch_line(hint - 1);
        r.hash = 0;
      } else {
        r.hash = prefixes_.hash(r.key.prefix(p.v4_prefix, p.v6_prefix));
        prefixes_.prefetch_bucket(r.hash);
      }
    }
    if (i >= 3 * kStage && i - 3 * kStage < n && prepared_[i - 3 * kStage].hash != 0)
      prefixes_.prefetch_record(prepared_[i - 3 * kStage].hash);
  }
}

Observation Tracker::observe(const base::IpAddress& peer, const base::IpAddress& local,
                             uint8_t mode, uint8_t version, int64_t now_ns, const LimitParams& p,
                             Treatment treatment, uint32_t bytes, uint8_t request_flags) {
  Observation o;
  const AddressKey key = AddressKey::from(peer);
  const ClientTable::Lookup c = table_.find_or_create(key, now_ns);
  o.tracked = c.slot != ClientTable::kNone;
  o.created = c.created;
  o.evicted = c.evicted;
  if (o.tracked && !c.created) o.gap_ns = now_ns - c.previous_ns;
  unique_.add(key, now_ns, o.tracked && !c.created ? c.previous_ns : -1);
  top_.add(key, bytes, now_ns);

  if (treatment != Treatment::kUnlimited) {
    // The record remembers where its prefix was: one line instead of a bucket and a line.
    uint32_t hint = o.tracked ? table_.hint(c.slot) : 0;
    const PrefixTable::Lookup pl = prefixes_.find_or_create(
        key.prefix(p.v4_prefix, p.v6_prefix), p, now_ns, o.tracked ? &hint : nullptr);
    if (o.tracked) table_.set_hint(c.slot, hint);
    o.prefix_evicted = pl.evicted_active;
    if (treatment == Treatment::kDenied || treatment == Treatment::kBlockedKod) {
      o.verdict = deny(*pl.state, p, now_ns);
    } else if (treatment == Treatment::kBlockedDrop) {
      o.verdict = Verdict::kDrop;
    } else if (treatment == Treatment::kBlockedLeak) {
      o.verdict = leaks(p, next_random()) ? Verdict::kLeak : Verdict::kDrop;
    } else {
      const int64_t gap = o.tracked && !c.created ? now_ns - c.previous_ns : -1;
      o.verdict = limit(*pl.state, p, now_ns, gap, next_random());
    }
  }
  if (o.tracked) {
    const bool refused = treatment == Treatment::kDenied || blocked(treatment);
    uint8_t flags = static_cast<uint8_t>((treatment == Treatment::kDenied ? kFlagDenied : 0) |
                                         (blocked(treatment) ? kFlagBlocked : 0) | request_flags);
    switch (o.verdict) {
      case Verdict::kPass: break;
      case Verdict::kLeak: flags |= refused ? kFlagLeaked : kFlagLimited | kFlagLeaked; break;
      case Verdict::kKod: flags |= refused ? kFlagKod : kFlagLimited | kFlagKod; break;
      case Verdict::kDrop: flags |= refused ? 0 : kFlagLimited; break;
    }
    const uint16_t kods_before = table_.peek(c.slot).kods;
    table_.record(c.slot, now_ns, mode, version, table_.local_index(local), flags,
                  o.verdict == Verdict::kDrop);
    if (o.verdict == Verdict::kKod && treatment == Treatment::kLimited && kods_before == 0) {
      const ClientTable::Peek after = table_.peek(c.slot);
      kod_watch_.record({key, after.first_ns, now_ns, after.count, c.slot});
    }
  }
  return o;
}

}  // namespace strata::clients
