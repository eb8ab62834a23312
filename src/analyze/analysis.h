// What `strata analyze` learns from the NTP packets of a capture: requests and replies told
// apart, totals by family at the IP level, and one exact record per client (requests and
// request bytes, replies and reply bytes) in an open-addressing table of 40-octet entries,
// grown at 3/4 full (10 million clients: 2^24 slots, 671 MB). Reports are computed from the table:
// unique clients, the requests-per-client distribution, top talkers, the cumulative share
// of traffic by client activity, and what blocking the busiest clients would cut.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analyze/decode.h"
#include "clients/address_key.h"

namespace strata::analyze {

struct Options {
  uint16_t port = 123;
  std::optional<base::IpAddress> server;  // tells requests from replies by address
};

enum class Direction : uint8_t { kRequest, kReply, kUnknown };

// Request or reply: by the server address when given, else by NTP mode (3, 1 and NTPv1's 0
// ask; 4 and 2 answer; mode 6 by the R bit), else by which side uses the NTP port.
Direction direction(const Decoded& d, const Options& o);

struct ClientRecord {
  clients::AddressKey key;
  uint32_t requests = 0;
  uint32_t replies = 0;
  uint64_t request_bytes = 0;  // IP level
  uint64_t reply_bytes = 0;
};
static_assert(sizeof(ClientRecord) == 40);

struct Totals {
  uint64_t frames = 0;
  uint64_t not_ip = 0;
  uint64_t other_ip = 0;      // TCP, ICMP...
  uint64_t fragments = 0;
  uint64_t truncated = 0;
  uint64_t other_udp = 0;     // UDP not on the NTP port
  uint64_t requests = 0;
  uint64_t replies = 0;
  uint64_t unknown = 0;       // NTP port, direction not told
  uint64_t requests_v4 = 0, requests_v6 = 0;
  uint64_t replies_v4 = 0, replies_v6 = 0;
  uint64_t request_bytes = 0, reply_bytes = 0;  // IP level
  uint64_t kod_replies = 0;   // replies with stratum 0 (Kiss-o'-Death)
  double first_s = 0, last_s = 0;  // capture timestamps, s since 1970
  bool any = false;
  double duration() const { return any ? last_s - first_s : 0; }
};

class Analysis {
 public:
  explicit Analysis(const Options& options);
  // One captured frame at time `ts` (s since 1970).
  void add(double ts, const Decoded& d) { apply(prepare(ts, d)); }

  // The same in two steps, for batches: prepare() keeps what the frame contributes (it does
  // not refer to the frame's bytes, which the capture reader reuses) and starts loading the
  // client's slot into the cache; apply() counts it. Preparing a batch of frames before
  // applying them hides the cache misses of a large client table behind each other.
  struct Prepared {
    double ts = 0;
    Frame kind = Frame::kNotIp;
    Direction direction = Direction::kUnknown;
    bool v4 = true;
    bool kod = false;
    bool ntp = false;  // on the NTP port
    uint32_t ip_length = 0;
    clients::AddressKey key;  // the client (requests: source; replies: destination)
    uint64_t hash = 0;
  };
  Prepared prepare(double ts, const Decoded& d) const;
  void apply(const Prepared& p);
  const Totals& totals() const { return totals_; }
  // The client records in use, in no particular order.
  std::vector<ClientRecord> clients() const;
  size_t client_count() const { return size_; }
  size_t memory_bytes() const { return slots_.size() * sizeof(ClientRecord); }

 private:
  ClientRecord& find_or_add(const clients::AddressKey& key, uint64_t hash);
  void grow();

  Options options_;
  Totals totals_;
  std::vector<ClientRecord> slots_;  // empty slot: requests == 0 && replies == 0
  size_t size_ = 0;
  uint64_t seed_;
};

// Reports over the client records.
struct Distribution {
  struct Bucket {
    uint32_t min = 0, max = 0;  // requests per client, inclusive
    uint64_t clients = 0;
    uint64_t requests = 0;
  };
  std::vector<Bucket> buckets;  // 1, 2, 3-4, 5-8, ... powers of two
};
Distribution distribution(const std::vector<ClientRecord>& clients);

struct Talker {
  base::IpAddress address;
  uint32_t requests = 0;
  uint64_t request_bytes = 0;
  uint64_t reply_bytes = 0;
};
std::vector<Talker> top_talkers(const std::vector<ClientRecord>& clients, size_t n);

// "Share of traffic from clients with at most N queries", and the effect of blocking clients
// with more than N: both at the thresholds `ns`.
struct ThresholdRow {
  uint32_t n = 0;
  uint64_t clients_at_most = 0;    // clients with <= n requests
  double request_share_at_most = 0;  // their share of all requests
  uint64_t clients_blocked = 0;    // clients with > n requests
  uint64_t requests_cut = 0;
  uint64_t reply_bytes_cut = 0;
  double request_share_cut = 0;
};
std::vector<ThresholdRow> thresholds(const std::vector<ClientRecord>& clients,
                                     const std::vector<uint32_t>& ns);
// 1, 2, 5, 10, 20, 50, ... up to the first at or above the busiest client's count.
std::vector<uint32_t> default_thresholds(uint32_t max_requests);

}  // namespace strata::analyze
