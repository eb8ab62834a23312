// Rate limiter (see limiter.h).
#include "clients/limiter.h"

#include <algorithm>
#include <cmath>

namespace strata::clients {

PrefixState fresh_state(const LimitParams& p, int64_t now_ns) {
  PrefixState s;
  s.last_ns = now_ns;
  s.tokens = static_cast<float>(p.burst);
  return s;
}

namespace {

// e^-x for x >= 0. Requests of a busy prefix come a fraction of the time constant apart, and
// there a Taylor polynomial is exact to the double's last bits (the error term is below
// x^5/120 < 1e-8 for x < 1/16, far below the float the score is kept in): a few multiplies
// instead of a libm call on every request.
double exp_minus(double x) {
  if (x < 0.0625) return 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6 - x * (1.0 / 24))));
  return std::exp(-x);
}

// The decayed request-rate score and the time of the last request, for one more request.
double advance(PrefixState& s, const LimitParams& p, int64_t now_ns) {
  const double dt = static_cast<double>(std::max<int64_t>(0, now_ns - s.last_ns)) * 1e-9;
  s.last_ns = std::max(s.last_ns, now_ns);
  s.score = static_cast<float>(s.score * exp_minus(dt / p.score_decay_s) + 1.0 / p.score_decay_s);
  return dt;
}

// Whether a KoD may be sent now: not to a flood, at most one per kod_interval.
bool kod_due(PrefixState& s, const LimitParams& p, int64_t now_ns) {
  if (!p.kod || s.score > p.flood_rate) return false;
  if (s.last_kod_ns != INT64_MIN &&
      static_cast<double>(now_ns - s.last_kod_ns) * 1e-9 < p.kod_interval_s)
    return false;
  s.last_kod_ns = now_ns;
  return true;
}

}  // namespace

Verdict deny(PrefixState& s, const LimitParams& p, int64_t now_ns) {
  advance(s, p, now_ns);
  return kod_due(s, p, now_ns) ? Verdict::kKod : Verdict::kDrop;
}

Verdict limit(PrefixState& s, const LimitParams& p, int64_t now_ns, int64_t address_gap_ns,
              uint64_t random) {
  // Refill and decay for the time since the prefix's previous request. Time never runs
  // backwards here: requests of one batch can carry slightly out-of-order receive times.
  const double dt = advance(s, p, now_ns);
  s.tokens = static_cast<float>(std::min(p.burst, s.tokens + dt / p.interval_s));

  const bool too_close =
      address_gap_ns >= 0 && static_cast<double>(address_gap_ns) * 1e-9 < p.min_spacing_s;
  if (!too_close && s.tokens >= 1.0f) {
    s.tokens -= 1.0f;
    return Verdict::kPass;
  }
  // Over the limit. The leak first.
  if (leaks(p, random)) return Verdict::kLeak;
  return kod_due(s, p, now_ns) ? Verdict::kKod : Verdict::kDrop;
}

PrefixTable::PrefixTable(uint32_t capacity, uint64_t seed)
    : seed_(seed), index_(std::max<uint32_t>(capacity, 1)) {}

size_t PrefixTable::memory_bytes() const { return index_.memory_bytes(); }

PrefixTable::Lookup PrefixTable::found(uint32_t slot, uint32_t* hint) {
  index_.reference(slot);
  if (hint != nullptr) *hint = slot + 1;
  Lookup l;
  l.state = &index_.payload(slot).state;
  return l;
}

PrefixTable::Lookup PrefixTable::find_or_create(const AddressKey& prefix, const LimitParams& p,
                                                int64_t now_ns, uint32_t* hint) {
  if (hint != nullptr && *hint != 0 && *hint <= index_.capacity()) {
    const Record& r = index_.payload(*hint - 1);
    if (r.live != 0 && r.key == prefix) return found(*hint - 1, hint);
  }
  Lookup l;
  const uint64_t hash = hash_key(prefix, seed_);
  uint32_t slot = index_.find(hash, [&](uint32_t s) { return index_.payload(s).key == prefix; });
  if (slot != kNone) return found(slot, hint);
  PrefixState start = fresh_state(p, now_ns);
  if (index_.full()) {
    // The least recently seen prefix goes. If it had not yet refilled its bucket, its
    // limiter state is lost (counted by the caller): the table is too small for the load,
    // as under a flood of forged sources. A full bucket for the newcomer would then answer
    // every one of them (the limiter failing open), so it takes over the state it evicts:
    // that bucket refilled to now, its request-rate score and its KoD pacing. The table's
    // budget is then that of its slots, however many sources pass through them.
    const uint32_t oldest = index_.candidate();  // least recently seen, second chance
    Record& old = index_.payload(oldest);
    const double idle = static_cast<double>(now_ns - old.state.last_ns) * 1e-9;
    l.evicted_active = idle < p.burst * p.interval_s;
    if (l.evicted_active) {
      start.tokens = static_cast<float>(std::min(p.burst, old.state.tokens + std::max(0.0, idle) / p.interval_s));
      start.score = static_cast<float>(old.state.score * std::exp(-std::max(0.0, idle) / p.score_decay_s));
      start.last_kod_ns = old.state.last_kod_ns;
    }
    index_.remove(oldest, hash_key(old.key, seed_));
    old.live = 0;
  }
  slot = index_.insert(hash);
  Record& r = index_.payload(slot);
  r.key = prefix;
  r.state = start;
  r.live = 1;
  if (hint != nullptr) *hint = slot + 1;
  l.state = &r.state;
  l.created = true;
  return l;
}

}  // namespace strata::clients
