// What `strata analyze` learns from the NTP packets of a capture: requests and replies told
// apart, totals by family at the IP level, and one exact record per client (requests and
// request bytes, replies and reply bytes, poll-interval bins). The records, 64 octets each,
// lie one after the other in order of first appearance, in an array that grows in place
// (mremap: no copy); an open-addressing index of 8-octet entries (32 bits of hash, record
// number), at most 3/4 full, finds them. 10 million clients: 640 MB of records and a 128 MiB
// index (and, while it doubles, the 64 MiB one before it). Reports are computed from the records:
// unique clients, the requests-per-client distribution, top talkers, the cumulative share
// of traffic by client activity, and what blocking the busiest clients would cut.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <map>

#include "analyze/decode.h"
#include "clients/address_key.h"
#include "clients/zeroed_array.h"
#include "stats/histogram.h"

namespace strata::analyze {

struct Options {
  uint16_t port = 123;
  std::optional<base::IpAddress> server;  // tells requests from replies by address
};

enum class Direction : uint8_t { kRequest, kReply, kUnknown };

// Request or reply: by the server address when given, else by NTP mode (3, 1 and NTPv1's 0
// ask; 4 and 2 answer; mode 6 by the R bit), else by which side uses the NTP port.
Direction direction(const Decoded& d, const Options& o);

// Poll intervals: the gaps between a client's requests, counted in bins of whole powers of
// two seconds (bin k holds gaps that round to 2^k in log2: 64 s polls land in bin 6 even with
// jitter either way), saturating at 255 per bin; the median bin is the client's interval.
inline constexpr int kGapBins = 16;  // 1 s (and less) ... 32768 s (and more)
inline constexpr uint8_t kReplayKod = 1;
inline constexpr uint8_t kReplayDropped = 2;
int gap_bin(double seconds);
int gap_bin_ms(uint64_t ms);

// Client software from the header fields of a request (what real clients send, captured from
// chronyd 4.3, NTPsec 1.2.2's ntpd and ntpdig, systemd-timesyncd 252; the others from their
// documentation):
enum class ClientClass : uint8_t {
  kUnknown,      // none of the below (NTPv4 devices with their own mix of fields)
  kMinimal,      // precision 32, every other field zero, random transmit: chrony 4, NTPsec ntpd
  kSntpUnsync,   // leap 3, stratum 0, precision 0, zeros: ntpdig / sntp
  kSntp,         // leap 0, stratum 0, precision 0, zeros: systemd-timesyncd, busybox, embedded SNTP
  kFullNtp,      // its own stratum, precision, root delay/dispersion or refid: classic ntpd (ntp.org)
  kNtpV3,        // NTPv3: old ntpd, Windows w32time, many devices
  kLegacy,       // NTPv1/v2 (and NTPv1 mode 0): very old software and devices
  kSymmetric,    // mode 1 (symmetric active) requests: peers, some Windows configurations
};
inline constexpr int kClientClasses = 8;
ClientClass fingerprint(std::span<const uint8_t> payload);
const char* class_name(ClientClass c);
const char* class_explanation(ClientClass c);

struct alignas(64) ClientRecord {  // one cache line each
  clients::AddressKey key;
  uint32_t requests = 0;
  uint32_t replies = 0;
  uint64_t request_bytes = 0;  // IP level
  uint64_t reply_bytes = 0;
  uint32_t last_ms = 0;        // last request, ms after the analysis epoch
  std::array<uint8_t, kGapBins> gaps{};
  uint8_t replay = 0;          // what-if: kReplayKod | kReplayDropped seen for this client
  ClientClass software = ClientClass::kUnknown;  // of its last request
  uint16_t fast_gap_ms = 0;    // mean of its gaps in bin 0 (under 1.414 s), ms: the fast pollers'
  // The median gap's bin, or -1 with fewer than two requests.
  int median_gap_bin() const;
  // The median interval in seconds (-1 with fewer than two requests): in bin 0 the mean of
  // those gaps (a 0.167 s and a 0.4 s poller differ), else the bin's power of two (bins are a
  // factor of 2 wide, centred on it: within 41%).
  double median_interval_s() const;
};
static_assert(sizeof(ClientRecord) == 64);

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
  // NTS (RFC 8915): packets carrying its extension fields, their IP-level bytes, and the
  // KoD NTSN replies (a server that cannot open a cookie).
  uint64_t nts_requests = 0, nts_replies = 0, nts_naks = 0;
  uint64_t nts_request_bytes = 0, nts_reply_bytes = 0;
  double first_s = 0, last_s = 0;  // capture timestamps, s since 1970
  bool any = false;
  double duration() const { return any ? last_s - first_s : 0; }
};

class Analysis {
 public:
  explicit Analysis(const Options& options);
  // One captured frame at time `ts` (s since 1970).
  void add(double ts, const Decoded& d) {
    Prepared p;
    prepare(ts, d, p);
    apply(p);
  }

  // The same in three steps, for a stream of frames (see Pipeline below): prepare() keeps
  // what the frame contributes (it does not refer to the frame's bytes, which the capture
  // reader reuses) and starts loading the client's index line into the cache;
  // prefetch_record() reads that line and starts loading the client's record; apply()
  // counts the frame.
  struct Prepared {
    double ts = 0;
    Frame kind = Frame::kNotIp;
    Direction direction = Direction::kUnknown;
    bool v4 = true;
    bool kod = false;
    bool nts = false;   // carries NTS extension fields (UID or authenticator)
    bool ntsn = false;  // a KoD NTSN
    bool ntp = false;  // on the NTP port
    uint16_t source_port = 0, destination_port = 0;  // UDP not on the NTP port: counted by port
    uint32_t ip_length = 0;
    clients::AddressKey key;  // the client (requests: source; replies: destination)
    uint64_t hash = 0;
    bool client = false;  // counts for a client: key and hash are set
    uint8_t replay = 0;  // kReplayKod / kReplayDropped, set by the caller's what-if replay
    ClientClass software = ClientClass::kUnknown;
    // The server (a request's destination, a reply's source) and, for replies, its
    // processing time (transmit - receive timestamps), ns; -1 for a KoD or a reply cut short.
    base::IpAddress server;
    int64_t processing_ns = -1;
  };
  void prepare(double ts, const Decoded& d, Prepared& out) const;  // all of `out`
  // Only a hint: apply() is right without it, whatever happened in between.
  void prefetch_record(const Prepared& p) const;
  void apply(const Prepared& p);

  // Frames through the three steps 16 frames apart: while one frame's index line or record
  // is on its way from memory, the 15 frames after it are worked on, so a client table far
  // larger than the caches costs little more than one in them. Counts are the same as with
  // add(), in the same order.
  class Pipeline {
   public:
    explicit Pipeline(Analysis& analysis) : analysis_(analysis) {}
    ~Pipeline() { flush(); }
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;
    // Prepares the frame (applying the one 32 frames before it); the caller may still set
    // the result's `replay` before the next push.
    Prepared& push(double ts, const Decoded& d) {
      Prepared& p = ring_[next_ % kDistance];
      if (next_ - applied_ == kDistance) analysis_.apply(ring_[applied_++ % kDistance]);  // = p
      analysis_.prepare(ts, d, p);
      ++next_;
      if (next_ > kStep) analysis_.prefetch_record(ring_[(next_ - 1 - kStep) % kDistance]);
      return p;
    }
    // Applies the frames still in the pipeline.
    void flush() {
      while (applied_ < next_) analysis_.apply(ring_[applied_++ % kDistance]);
    }

   private:
    static constexpr uint64_t kStep = 16, kDistance = 2 * kStep;
    Analysis& analysis_;
    std::array<Prepared, kDistance> ring_;
    uint64_t next_ = 0;     // frames pushed
    uint64_t applied_ = 0;  // frames applied
  };
  const Totals& totals() const { return totals_; }
  const Options& options() const { return options_; }
  // The UDP port (source or destination) of most datagrams not on the NTP port, with their
  // count: what to suggest for --port when a capture's NTP ran elsewhere. nullopt: none.
  std::optional<std::pair<uint16_t, uint64_t>> busiest_other_udp_port() const;
  // Every client's record, in order of first appearance (requests or replies); the reports
  // below skip those without requests. No copy: a 10-million-client analysis would need
  // another 640 MB for one.
  std::span<const ClientRecord> clients() const { return {records_.data(), size_}; }
  size_t client_count() const { return size_; }
  // The records in use and the index: what the table holds in memory (the record array's
  // unused tail is address space only until written).
  size_t memory_bytes() const { return size_ * sizeof(ClientRecord) + index_.mapped_bytes(); }
  // Per server address (the source of replies): replies, KoDs, and the processing-time
  // distribution of its time replies.
  struct ServerStats {
    uint64_t requests = 0;  // sent to it
    uint64_t replies = 0;
    uint64_t kod = 0;
    stats::HistogramCounts processing_ns;
  };
  const std::map<clients::AddressKey, ServerStats>& servers() const { return servers_; }

 private:
  ClientRecord& find_or_add(const clients::AddressKey& key, uint64_t hash);
  void grow_index();
  // An index entry: the hash's top 32 bits (the tag), then the record's number + 1.
  static uint64_t entry(uint64_t hash, size_t record) { return (hash >> 32 << 32) | (record + 1); }
  static uint32_t tag_of(uint64_t hash_or_entry) { return static_cast<uint32_t>(hash_or_entry >> 32); }
  static size_t record_of(uint64_t entry) { return static_cast<uint32_t>(entry) - 1; }
  static constexpr size_t kFirstRecords = size_t{1} << 15;  // 2 MiB: one huge page
  static constexpr size_t kFirstSlots = size_t{1} << 16;    // 2^(64 - shift_)
  static constexpr size_t kMaxRecords = (size_t{1} << 32) - 1;  // numbered in 32 bits

  Options options_;
  Totals totals_;
  std::vector<uint32_t> other_udp_ports_;  // 65,536 counters, allocated at the first such datagram
  double epoch_s_ = -1;  // the first frame's time: last_ms counts from it
  std::map<clients::AddressKey, ServerStats> servers_;  // few: the servers in the capture
  ServerStats& server_stats(const base::IpAddress& a);
  clients::AddressKey last_server_key_;                 // one-entry cache: usually one server
  ServerStats* last_server_ = nullptr;
  clients::ZeroedArray<ClientRecord> records_;  // size_ in use, in order of first appearance
  size_t size_ = 0;
  // Open addressing, linear probing: hash >> 32 << 32 | record + 1, 0 when empty; a hash's
  // home slot is its top bits (hash >> shift_), so the tag holds it (up to 2^32 slots).
  clients::ZeroedArray<uint64_t> index_;
  int shift_ = 64 - std::countr_zero(kFirstSlots);
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
Distribution distribution(std::span<const ClientRecord> clients);

struct Talker {
  base::IpAddress address;
  uint32_t requests = 0;
  uint64_t request_bytes = 0;
  uint64_t reply_bytes = 0;
};
std::vector<Talker> top_talkers(std::span<const ClientRecord> clients, size_t n);

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
std::vector<ThresholdRow> thresholds(std::span<const ClientRecord> clients,
                                     const std::vector<uint32_t>& ns);
// 1, 2, 5, 10, 20, 50, ... up to the first at or above the busiest client's count.
std::vector<uint32_t> default_thresholds(uint32_t max_requests);

// Clients and requests by software class.
struct ClassRow {
  ClientClass software = ClientClass::kUnknown;
  uint64_t clients = 0;
  uint64_t requests = 0;
};
std::vector<ClassRow> classes(std::span<const ClientRecord> clients);

// Clients by their median poll interval (those with two requests or more).
struct IntervalRow {
  int bin = 0;            // 2^bin seconds
  uint64_t clients = 0;
  uint64_t requests = 0;
};
std::vector<IntervalRow> intervals(std::span<const ClientRecord> clients);

// Clients whose median interval is below `seconds`, busiest first (at most n), and how many.
struct FastPoller {
  base::IpAddress address;
  uint32_t requests = 0;
  int bin = 0;
  double interval_s = 0;  // ClientRecord::median_interval_s
};
std::vector<FastPoller> fast_pollers(std::span<const ClientRecord> clients, double seconds, size_t n,
                                     uint64_t& total);

}  // namespace strata::analyze
