// ntpq's mrulist over mode 6 (protocols.md 2.9), served from the client tables: the nonce
// that proves the requester receives at its address, the READ_MRU parameters, and the
// response walk from oldest to newest with resume points.
//
// The client tables belong to the workers, one per worker and each in its own LRU order, so
// there is no single list to walk under a lock as ntpd does. Instead a request without
// resume points (ntpq starting) takes a snapshot: every record that passes the filters, at
// most `max_entries` of the newest, sorted by last-seen time. The requests that follow, with
// the same filters, walk that snapshot, so a resume point is always found while it lives and
// ntpq never has to restart because its newest entries moved. A snapshot lives 60 s after its
// last use, or until a different walk starts.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/net.h"
#include "base/ntp_time.h"

namespace strata::mode6 {

// ntpd's restriction bits as mrulist shows them (rs.N).
inline constexpr uint16_t kResNoServe = 0x0002;
inline constexpr uint16_t kResLimited = 0x0020;
inline constexpr uint16_t kResKod = 0x0400;

struct MruEntry {
  base::IpAddress address;
  base::IpAddress local;
  uint64_t first = 0;  // l_fp
  uint64_t last = 0;   // l_fp
  uint32_t count = 0;
  uint32_t drops = 0;
  uint8_t mode_version = 0;  // version << 3 | mode
  uint16_t restrict = 0;
};

struct MruFilter {
  uint32_t mincount = 0;
  uint32_t mindrop = 0;
  uint16_t resall = 0;
  uint16_t resany = 0;
  std::optional<double> maxlstint;  // seconds
  std::optional<double> minlstint;
  std::optional<base::IpAddress> laddr;
  friend bool operator==(const MruFilter&, const MruFilter&) = default;
};

struct MruQuery {
  std::string nonce;
  std::optional<uint32_t> frags;
  std::optional<uint32_t> limit;
  std::optional<uint32_t> recent;  // NTPsec: only the newest N
  MruFilter filter;
  struct Resume {
    base::IpAddress address;
    uint64_t last = 0;
  };
  std::vector<Resume> resume;  // addr.N/last.N, N = 0 newest
};

// Parses READ_MRU data. nullopt when a value does not parse (ntpd then sends nothing).
std::optional<MruQuery> parse_mru_query(std::string_view data);

// Nonces: 24 hex digits = receive time (seconds, fraction) and 32 bits of a keyed hash over
// the time, the requester's address and port and a random salt replaced every hour (the
// previous salt stays valid for the change-over). Valid for 16 s, for that address and port.
class NonceKeeper {
 public:
  NonceKeeper();
  std::string make(base::NtpTimestamp now, const base::Endpoint& peer);
  bool valid(std::string_view nonce, base::NtpTimestamp now, const base::Endpoint& peer);

 private:
  uint32_t hash(const std::array<uint8_t, 16>& salt, uint64_t time, const base::Endpoint& peer) const;
  void rotate(base::NtpTimestamp now);
  std::array<uint8_t, 16> salt_{};
  std::array<uint8_t, 16> previous_{};
  uint64_t salt_since_ = 0;  // seconds (NTP era) when salt_ was made
};

// A snapshot of the client tables for mrulist walks.
class MruSnapshot {
 public:
  // Keeps the entries that pass `filter` at `now` (at most `max_entries`, the newest), sorted
  // oldest first.
  void build(std::vector<MruEntry> entries, const MruFilter& filter, uint64_t now,
             size_t max_entries);
  // The same from a stream of entries (`scan` calls its argument once per client): only the
  // newest `max_entries` that pass are ever held, however many clients there are.
  void build(const std::function<void(const std::function<void(const MruEntry&)>&)>& scan,
             const MruFilter& filter, uint64_t now, size_t max_entries);
  const std::vector<MruEntry>& entries() const { return entries_; }
  const MruFilter& filter() const { return filter_; }
  // Index after the first resume point found (entry with that address and exactly that last
  // time), or nullopt when none is.
  std::optional<size_t> resume_after(const std::vector<MruQuery::Resume>& points) const;

 private:
  std::vector<MruEntry> entries_;
  MruFilter filter_;
};

bool passes(const MruEntry& e, const MruFilter& f, uint64_t now);

// Result of one READ_MRU exchange.
struct MruResponse {
  enum class Kind : uint8_t { kData, kUnknownVariable, kBadValue } kind = Kind::kData;
  std::string data;   // the name=value text
  size_t rows = 0;
  bool complete = false;  // now= sent
};

// Writes the response to `query` from `snapshot` (entries after the resume point), with
// `fresh_nonce` first, within `max_bytes` of data: rows until the limit or the fragment
// budget, then `now=` (and `last.newest=`) when the snapshot's newest entry was sent.
MruResponse write_mru_response(const MruSnapshot& snapshot, const MruQuery& query,
                               const std::string& fresh_nonce, uint64_t now, size_t max_bytes);

// "1.2.3.4:0" / "[2001:db8::1]:0": mrulist's address form (the port is not kept: clients
// randomise it, RFC 9109).
std::string mru_address(const base::IpAddress& a);

}  // namespace strata::mode6
