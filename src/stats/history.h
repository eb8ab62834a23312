// stratad's own history of its main series, no Prometheus needed: fixed memory, three tiers
// (1 s for the last hour, 1 min for the last 7 days, 1 h for the last 400 days), each point the
// mean and the maximum of the seconds it covers. The main thread records one sample a second;
// control threads query; the state directory keeps it across restarts (serialize/parse, with
// a checksum: a damaged file is refused with a reason). Not on the packet path: one mutex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::stats {

// X(name, unit, meaning): the one list of history series (the control API, `strata history`,
// the dashboard and docs/operating.md name them so). Rates are per second over the second
// sampled; the rest are values read at the sample.
#define STRATA_HISTORY_SERIES(X)                                                                  \
  X(requests, "1/s", "Datagrams received on the NTP sockets (the counter received).")           \
  X(replies, "1/s", "Replies sent, time and KoD (responses_sent).")                              \
  X(bad_format, "1/s", "Dropped as malformed (bad_format).")                                      \
  X(auth_failed, "1/s", "Dropped: a MAC or crypto-NAK that did not verify (auth_failed).")      \
  X(declined, "1/s", "Dropped: well-formed but not served (declined).")                          \
  X(restricted, "1/s", "Refused by an access rule (restricted).")                                \
  X(rate_limited, "1/s", "Over a client's rate limit, dropped or KoD (rate_limited).")           \
  X(kod, "1/s", "Kiss-o'-Death replies sent (kod_sent).")                                         \
  X(bytes_in_v4, "B/s", "IP-level bytes received over IPv4.")                                    \
  X(bytes_in_v6, "B/s", "IP-level bytes received over IPv6.")                                    \
  X(bytes_out_v4, "B/s", "IP-level bytes sent over IPv4.")                                       \
  X(bytes_out_v6, "B/s", "IP-level bytes sent over IPv6.")                                       \
  X(kernel_drops, "1/s",                                                                          \
    "Datagrams the kernel dropped before stratad read them: full socket queues and AF_XDP "     \
    "rx_dropped (rx_queue_drops + xdp_rx_dropped).")                                             \
  X(unique_1m, "clients", "Distinct client addresses (IPv4 + IPv6) in the current minute so far.") \
  X(unique_1h, "clients", "Distinct client addresses in the current hour so far.")              \
  X(unique_1d, "clients", "Distinct client addresses in the current UTC day so far.")           \
  X(processing_p50, "ns", "Median processing time (receive to send) of the second's requests.") \
  X(processing_p99, "ns", "99th percentile of the second's processing times.")                   \
  X(top_share, "ratio",                                                                           \
    "Share of the current minute's requests sent by its ten largest talkers (addresses).")       \
  X(cost_month, "USD/month",                                                                      \
    "What a month of the second's traffic would cost at [cost]'s provider (none: no [cost]).")

enum class Series : uint8_t {
#define STRATA_HISTORY_ENUM(name, unit, help) name,
  STRATA_HISTORY_SERIES(STRATA_HISTORY_ENUM)
#undef STRATA_HISTORY_ENUM
};

struct SeriesInfo {
  std::string_view name;
  std::string_view unit;
  std::string_view help;
};

inline constexpr SeriesInfo kSeriesInfo[] = {
#define STRATA_HISTORY_INFO(name, unit, help) {#name, unit, help},
    STRATA_HISTORY_SERIES(STRATA_HISTORY_INFO)
#undef STRATA_HISTORY_INFO
};
inline constexpr size_t kSeriesCount = std::size(kSeriesInfo);
inline constexpr size_t series_index(Series s) { return static_cast<size_t>(s); }
std::optional<size_t> find_series(std::string_view name);
// The file's checksum (FNV-1a, 64 bits) of `data`: what History::serialize() appends.
uint64_t history_checksum(std::string_view data);

// One second's values; NaN where a value is unknown (no [cost], no requests to time).
using Sample = std::array<double, kSeriesCount>;
inline Sample unknown_sample() {
  Sample s;
  s.fill(std::numeric_limits<double>::quiet_NaN());
  return s;
}

struct TierSpec {
  int64_t step;  // seconds per point
  size_t slots;  // points kept
};
inline constexpr TierSpec kTiers[] = {{1, 3600}, {60, 7 * 1440}, {3600, 400 * 24}};
inline constexpr size_t kTierCount = std::size(kTiers);

class History {
 public:
  History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // The sample of unix second `t`. Every tier adds it to the point that covers `t`; a point
  // is complete when a sample of a later point arrives. Seconds normally grow by one; a gap
  // (stratad stopped, or the clock stepped forward) leaves its points unknown; a step back
  // makes earlier points current again (they are overwritten when completed).
  void record(int64_t t, const Sample& sample);

  struct Range {
    int64_t step = 0;   // 1, 60 or 3600; 0: the finest tier that covers `since`
    int64_t since = 0;  // unix seconds, inclusive (clipped to what the tier keeps)
    int64_t until = 0;  // unix seconds, inclusive
  };
  struct Result {
    int64_t step = 0;
    int64_t start = 0;  // unix time of the first point (points are `step` apart)
    size_t points = 0;
    // [series][point], in the order asked; NaN: unknown. The point in progress is included
    // (the samples it has so far).
    std::vector<std::vector<float>> mean, max;
  };
  // Throws std::invalid_argument for a step that is not a tier's or since > until.
  Result query(const std::vector<size_t>& series, Range range) const;
  // The tier `query` picks for step 0.
  static int64_t auto_step(int64_t since, int64_t until);

  // The whole state, for the state directory (a few MiB), and back. parse() refuses a file
  // that is damaged (checksum, lengths) or made with other tiers, saying why; series unknown
  // to this version are skipped and series it lacks stay unknown.
  std::string serialize() const;
  bool parse(std::string_view data, std::string& error);

  size_t memory_bytes() const;
  int64_t last_second() const;

 private:
  struct Point {
    float mean;
    float max;
  };
  struct Accumulator {
    double sum = 0;
    double max = -std::numeric_limits<double>::infinity();
    uint32_t count = 0;
  };
  struct Tier {
    int64_t step = 0;
    size_t slots = 0;
    int64_t current = std::numeric_limits<int64_t>::min();  // point number in progress
    std::array<Accumulator, kSeriesCount> acc{};
    std::vector<int64_t> stamp;  // per slot: the point number it holds (min: none)
    std::vector<Point> points;   // [slot * kSeriesCount + series]
  };
  void complete(Tier& tier);
  static Point point_of(const Accumulator& a);

  mutable std::mutex mu_;
  std::array<Tier, kTierCount> tiers_;
  int64_t last_ = std::numeric_limits<int64_t>::min();
};

}  // namespace strata::stats
