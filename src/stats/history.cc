// The history's tiers, queries and file format (see history.h).
#include "stats/history.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace strata::stats {

namespace {

constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
constexpr char kMagic[8] = {'S', 'T', 'R', 'A', 'H', 'I', 'S', 'T'};
constexpr uint32_t kFormat = 1;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

static_assert(std::endian::native == std::endian::little,
              "the history file is written in the machine's order, little-endian");

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void bytes(const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
  std::string out;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  template <class T>
  bool get(T& v) {
    if (data_.size() - at_ < sizeof v) return false;
    std::memcpy(&v, data_.data() + at_, sizeof v);
    at_ += sizeof v;
    return true;
  }
  bool bytes(void* p, size_t n) {
    if (data_.size() - at_ < n) return false;
    std::memcpy(p, data_.data() + at_, n);
    at_ += n;
    return true;
  }
  bool skip(size_t n) {
    if (data_.size() - at_ < n) return false;
    at_ += n;
    return true;
  }
  size_t left() const { return data_.size() - at_; }

 private:
  std::string_view data_;
  size_t at_ = 0;
};

}  // namespace

// FNV-1a, 64 bits: catches a damaged or cut file (not an attacker: the state directory is ours).
uint64_t history_checksum(std::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::optional<size_t> find_series(std::string_view name) {
  for (size_t i = 0; i < kSeriesCount; ++i)
    if (kSeriesInfo[i].name == name) return i;
  return std::nullopt;
}

History::History() {
  for (size_t i = 0; i < kTierCount; ++i) {
    Tier& t = tiers_[i];
    t.step = kTiers[i].step;
    t.slots = kTiers[i].slots;
    t.stamp.assign(t.slots, kNone);
    t.points.assign(t.slots * kSeriesCount, Point{kNaN, kNaN});
  }
}

History::Point History::point_of(const Accumulator& a) {
  if (a.count == 0) return {kNaN, kNaN};
  return {static_cast<float>(a.sum / a.count), static_cast<float>(a.max)};
}

void History::complete(Tier& t) {
  if (t.current == kNone) return;
  const size_t slot = static_cast<size_t>(t.current % static_cast<int64_t>(t.slots) +
                                          static_cast<int64_t>(t.slots)) % t.slots;
  t.stamp[slot] = t.current;
  for (size_t s = 0; s < kSeriesCount; ++s) {
    t.points[slot * kSeriesCount + s] = point_of(t.acc[s]);
    t.acc[s] = Accumulator{};
  }
}

void History::record(int64_t t, const Sample& sample) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Tier& tier : tiers_) {
    const int64_t number = floor_div(t, tier.step);
    if (number != tier.current) {
      complete(tier);
      tier.current = number;
    }
    for (size_t s = 0; s < kSeriesCount; ++s) {
      const double v = sample[s];
      if (!std::isfinite(v)) continue;
      Accumulator& a = tier.acc[s];
      a.sum += v;
      a.max = std::max(a.max, v);
      ++a.count;
    }
  }
  last_ = t;
}

int64_t History::auto_step(int64_t since, int64_t until) {
  for (const TierSpec& t : kTiers)
    if (until - since < t.step * static_cast<int64_t>(t.slots)) return t.step;
  return kTiers[kTierCount - 1].step;
}

History::Result History::query(const std::vector<size_t>& series, Range range) const {
  if (range.since > range.until) throw std::invalid_argument("since is after until");
  for (size_t s : series)
    if (s >= kSeriesCount) throw std::invalid_argument("no such series");
  const int64_t step = range.step == 0 ? auto_step(range.since, range.until) : range.step;
  const Tier* tier = nullptr;
  for (const Tier& t : tiers_)
    if (t.step == step) tier = &t;
  if (tier == nullptr) throw std::invalid_argument("step must be 1, 60 or 3600 seconds");

  std::lock_guard<std::mutex> lock(mu_);
  const int64_t last = floor_div(range.until, step);
  int64_t first = floor_div(range.since, step);
  first = std::max(first, last - static_cast<int64_t>(tier->slots) + 1);  // what the tier keeps
  Result r;
  r.step = step;
  r.start = first * step;
  r.points = static_cast<size_t>(last - first + 1);
  r.mean.assign(series.size(), std::vector<float>(r.points, kNaN));
  r.max.assign(series.size(), std::vector<float>(r.points, kNaN));
  for (int64_t n = first; n <= last; ++n) {
    const size_t i = static_cast<size_t>(n - first);
    if (n == tier->current) {
      for (size_t k = 0; k < series.size(); ++k) {
        const Point p = point_of(tier->acc[series[k]]);
        r.mean[k][i] = p.mean;
        r.max[k][i] = p.max;
      }
      continue;
    }
    const size_t slot = static_cast<size_t>(n % static_cast<int64_t>(tier->slots) +
                                            static_cast<int64_t>(tier->slots)) % tier->slots;
    if (tier->stamp[slot] != n) continue;
    for (size_t k = 0; k < series.size(); ++k) {
      const Point p = tier->points[slot * kSeriesCount + series[k]];
      r.mean[k][i] = p.mean;
      r.max[k][i] = p.max;
    }
  }
  return r;
}

// Layout (little-endian): magic, format, the series' names (count, then length + octets
// each), the tiers (count; each: step, slots, point in progress, its accumulators, the slots'
// point numbers, the points), the last second, and an FNV-1a checksum of all before it.
std::string History::serialize() const {
  std::lock_guard<std::mutex> lock(mu_);
  Writer w;
  w.bytes(kMagic, sizeof kMagic);
  w.put(kFormat);
  w.put(static_cast<uint32_t>(kSeriesCount));
  for (const SeriesInfo& s : kSeriesInfo) {
    w.put(static_cast<uint8_t>(s.name.size()));
    w.bytes(s.name.data(), s.name.size());
  }
  w.put(static_cast<uint32_t>(kTierCount));
  for (const Tier& t : tiers_) {
    w.put(t.step);
    w.put(static_cast<uint64_t>(t.slots));
    w.put(t.current);
    for (const Accumulator& a : t.acc) {
      w.put(a.sum);
      w.put(a.max);
      w.put(a.count);
    }
    w.bytes(t.stamp.data(), t.stamp.size() * sizeof(int64_t));
    w.bytes(t.points.data(), t.points.size() * sizeof(Point));
  }
  w.put(last_);
  w.put(history_checksum(w.out));
  return std::move(w.out);
}

bool History::parse(std::string_view data, std::string& error) {
  if (data.size() < sizeof kMagic + 8 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    error = "not a strata history file";
    return false;
  }
  uint64_t sum = 0;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  if (history_checksum(data.substr(0, data.size() - 8)) != sum) {
    error = "damaged (checksum mismatch: cut short or altered)";
    return false;
  }
  Reader r(data.substr(sizeof kMagic, data.size() - sizeof kMagic - 8));
  uint32_t format = 0, series = 0, tiers = 0;
  if (!r.get(format) || format != kFormat) {
    error = "format " + std::to_string(format) + ", this stratad reads " + std::to_string(kFormat);
    return false;
  }
  const auto cut = [&] {
    error = "damaged (shorter than its own lengths)";
    return false;
  };
  if (!r.get(series) || series > 4096) return cut();
  std::vector<std::optional<size_t>> map(series);  // file's series -> ours
  for (uint32_t i = 0; i < series; ++i) {
    uint8_t len = 0;
    std::string name;
    if (!r.get(len)) return cut();
    name.resize(len);
    if (!r.bytes(name.data(), len)) return cut();
    map[i] = find_series(name);
  }
  if (!r.get(tiers) || tiers != kTierCount) {
    error = "made with other tiers than 1 s, 1 min and 1 h";
    return false;
  }
  std::array<Tier, kTierCount> in;
  for (size_t k = 0; k < kTierCount; ++k) {
    Tier& t = in[k];
    uint64_t slots = 0;
    if (!r.get(t.step) || !r.get(slots) || !r.get(t.current)) return cut();
    if (t.step != kTiers[k].step || slots != kTiers[k].slots) {
      error = "made with other tiers (" + std::to_string(t.step) + " s x " + std::to_string(slots) + ")";
      return false;
    }
    t.slots = kTiers[k].slots;
    for (uint32_t i = 0; i < series; ++i) {
      Accumulator a;
      if (!r.get(a.sum) || !r.get(a.max) || !r.get(a.count)) return cut();
      if (map[i]) t.acc[*map[i]] = a;
    }
    t.stamp.resize(t.slots);
    if (!r.bytes(t.stamp.data(), t.slots * sizeof(int64_t))) return cut();
    t.points.assign(t.slots * kSeriesCount, Point{kNaN, kNaN});
    if (r.left() < t.slots * series * sizeof(Point)) return cut();
    for (size_t slot = 0; slot < t.slots; ++slot) {
      for (uint32_t i = 0; i < series; ++i) {
        Point p{kNaN, kNaN};
        r.get(p);
        if (map[i]) t.points[slot * kSeriesCount + *map[i]] = p;
      }
    }
  }
  int64_t last = 0;
  if (!r.get(last)) return cut();
  if (r.left() != 0) {
    error = "damaged (" + std::to_string(r.left()) + " octets after the end)";
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  tiers_ = std::move(in);
  last_ = last;
  return true;
}

size_t History::memory_bytes() const {
  size_t n = sizeof *this;
  for (const Tier& t : tiers_) n += t.stamp.capacity() * sizeof(int64_t) + t.points.capacity() * sizeof(Point);
  return n;
}

int64_t History::last_second() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

}  // namespace strata::stats
