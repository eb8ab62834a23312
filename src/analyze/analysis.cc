// Capture analysis (see analysis.h).
#include "analyze/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <stdexcept>

namespace strata::analyze {

Direction direction(const Decoded& d, const Options& o) {
  if (o.server) {
    const bool to = d.destination == *o.server, from = d.source == *o.server;
    if (to && !from) return Direction::kRequest;
    if (from && !to) return Direction::kReply;
    if (!to && !from) return Direction::kUnknown;
    // A client on the server's own address (loopback): by mode and ports below.
  }
  if (!d.payload.empty()) {
    const uint8_t mode = d.payload[0] & 7;
    if (mode == 3 || mode == 1 || mode == 0) return Direction::kRequest;
    if (mode == 4 || mode == 2) return Direction::kReply;
    if (mode == 6 && d.payload.size() >= 2)
      return (d.payload[1] & 0x80) ? Direction::kReply : Direction::kRequest;
  }
  const bool to_port = d.destination_port == o.port, from_port = d.source_port == o.port;
  if (to_port && !from_port) return Direction::kRequest;
  if (from_port && !to_port) return Direction::kReply;
  return Direction::kUnknown;
}

ClientClass fingerprint(std::span<const uint8_t> p) {
  if (p.size() < 48) return ClientClass::kUnknown;
  const uint8_t leap = p[0] >> 6, version = (p[0] >> 3) & 7, mode = p[0] & 7;
  const uint8_t stratum = p[1];
  const auto precision = static_cast<int8_t>(p[3]);
  // Root delay, root dispersion, reference id and reference timestamp: octets 4 to 23.
  uint64_t a, b;
  uint32_t c;
  std::memcpy(&a, &p[4], 8);
  std::memcpy(&b, &p[12], 8);
  std::memcpy(&c, &p[20], 4);
  const bool zeros = (a | b | c) == 0;
  if (mode == 1) return ClientClass::kSymmetric;
  if (version <= 2) return ClientClass::kLegacy;
  if (version == 3) return ClientClass::kNtpV3;
  if (stratum == 0 && zeros && precision == 32) return ClientClass::kMinimal;
  if (stratum == 0 && zeros && precision == 0) return leap == 3 ? ClientClass::kSntpUnsync : ClientClass::kSntp;
  if (stratum >= 1 && stratum <= 16 && precision < 0 && !zeros) return ClientClass::kFullNtp;
  return ClientClass::kUnknown;
}

const char* class_name(ClientClass c) {
  switch (c) {
    case ClientClass::kUnknown: return "unknown";
    case ClientClass::kMinimal: return "chrony/NTPsec";
    case ClientClass::kSntpUnsync: return "ntpdig/sntp";
    case ClientClass::kSntp: return "SNTP";
    case ClientClass::kFullNtp: return "ntpd";
    case ClientClass::kNtpV3: return "NTPv3";
    case ClientClass::kLegacy: return "NTPv1/v2";
    case ClientClass::kSymmetric: return "symmetric";
  }
  return "?";
}

const char* class_explanation(ClientClass c) {
  switch (c) {
    case ClientClass::kUnknown: return "NTPv4 requests matching no pattern below: devices and libraries of their own";
    case ClientClass::kMinimal:
      return "precision 32, stratum, root delay/dispersion, refid and reference time zero, random transmit "
             "timestamp (data minimisation): chrony 4 and NTPsec's ntpd (checked with chronyd 4.3, ntpd 1.2.2)";
    case ClientClass::kSntpUnsync:
      return "leap 3, stratum 0, precision 0, zero fields, real transmit time: NTPsec's ntpdig (sntp, ntpdate)";
    case ClientClass::kSntp:
      return "leap 0, stratum 0, precision 0, zero fields, random transmit timestamp: systemd-timesyncd "
             "(checked with version 252) and other SNTP clients such as busybox and embedded devices";
    case ClientClass::kFullNtp:
      return "its own stratum, negative precision and root delay/dispersion or refid: a full NTP daemon "
             "sending its system state, as classic ntpd (ntp.org) does (not checked here)";
    case ClientClass::kNtpV3:
      return "NTPv3: older ntpd, Windows' w32time and many devices (the software named from its documentation, "
             "not checked here)";
    case ClientClass::kLegacy: return "NTPv1 or NTPv2: very old software and devices";
    case ClientClass::kSymmetric:
      return "mode 1 (symmetric active): NTP peers, some Windows configurations (not checked here)";
  }
  return "";
}

int gap_bin_ms(uint64_t ms) {
  // Bin k holds gaps from 2^(k-0.5) to 2^(k+0.5) seconds: compare with those edges (in ms)
  // rather than take a logarithm per request.
  static constexpr uint64_t kEdges[kGapBins - 1] = {1414,   2828,    5657,    11314,   22627,
                                                    45255,  90510,   181019,  362039,  724077,
                                                    1448155, 2896309, 5792619, 11585237, 23170475};
  return static_cast<int>(std::upper_bound(std::begin(kEdges), std::end(kEdges), ms) - std::begin(kEdges));
}

int gap_bin(double seconds) {
  if (!(seconds > 0)) return 0;
  return gap_bin_ms(static_cast<uint64_t>(std::min(seconds * 1e3, 1e15)));
}

double ClientRecord::median_interval_s() const {
  const int bin = median_gap_bin();
  if (bin < 0) return -1;
  if (bin == 0 && fast_gap_ms > 0) return fast_gap_ms * 1e-3;
  return static_cast<double>(uint32_t{1} << bin);
}

int ClientRecord::median_gap_bin() const {
  int total = 0;
  for (uint8_t g : gaps) total += g;
  if (total == 0) return -1;
  int seen = 0;
  for (int k = 0; k < kGapBins; ++k) {
    seen += gaps[static_cast<size_t>(k)];
    if (2 * seen >= total) return k;
  }
  return kGapBins - 1;
}

Analysis::Analysis(const Options& options)
    : options_(options),
      records_(kFirstRecords, clients::Pages::kHuge),
      index_(kFirstSlots, clients::Pages::kHuge),
      seed_(std::random_device{}() | 1) {}

void Analysis::grow_index() {
  // An entry's home slot is the top bits of its hash, which its tag holds: the entries move
  // to twice as many slots without a look at the records, in the order they were (old slot i
  // becomes new slot 2i or 2i + 1), so the new index is written almost sequentially.
  clients::ZeroedArray<uint64_t> index(index_.size() * 2, clients::Pages::kHuge);
  const int shift = shift_ - 1;
  const size_t mask = index.size() - 1;
  for (size_t n = 0; n < index_.size(); ++n) {
    const uint64_t e = index_[n];
    if (e == 0) continue;
    size_t i = static_cast<size_t>(e >> shift);  // (tag << 32) >> shift: the hash's top bits
    while (index[i] != 0) i = (i + 1) & mask;
    index[i] = e;
  }
  index_.swap(index);
  shift_ = shift;
}

ClientRecord& Analysis::find_or_add(const clients::AddressKey& key, uint64_t hash) {
  if ((size_ + 1) * 4 > index_.size() * 3) grow_index();
  const size_t mask = index_.size() - 1;
  const uint32_t tag = tag_of(hash);
  for (size_t i = hash >> shift_;; i = (i + 1) & mask) {
    const uint64_t e = index_[i];
    if (e == 0) {
      if (size_ == kMaxRecords) throw std::length_error("more than 4,294,967,295 clients");  // 256 GiB of records
      if (size_ == records_.size()) records_.grow(records_.size() * 2);
      index_[i] = entry(hash, size_);
      ClientRecord& r = records_[size_++];
      r.key = key;
      return r;
    }
    if (tag_of(e) == tag) {
      ClientRecord& r = records_[record_of(e)];
      if (r.key == key) return r;
    }
  }
}

void Analysis::prefetch_record(const Prepared& p) const {
  if (!p.client) return;
  const size_t mask = index_.size() - 1;  // if the index grew since prepare(), a wasted guess
  const uint32_t tag = tag_of(p.hash);
  for (size_t i = p.hash >> shift_, probes = 0; probes < 8; i = (i + 1) & mask, ++probes) {
    const uint64_t e = index_[i];
    if (e == 0) return;  // a new client: its record will be the next one, written sequentially
    if (tag_of(e) == tag) {
      __builtin_prefetch(&records_[record_of(e)]);
      return;
    }
  }
}

namespace {

// An NTPv4 packet with NTS extension fields: a Unique Identifier (0x0104, in requests, replies
// and NAKs) or an NTS Authenticator (0x0404), found by walking the fields after the header.
bool has_nts_fields(std::span<const uint8_t> payload) {
  if (payload.size() <= 48 || ((payload[0] >> 3) & 7) != 4) return false;
  for (size_t pos = 48; payload.size() - pos >= 4;) {
    const unsigned type = unsigned{payload[pos]} << 8 | payload[pos + 1];
    const size_t length = size_t{payload[pos + 2]} << 8 | payload[pos + 3];
    if (type == 0x0104 || type == 0x0404) return true;
    if (length < 4 || length % 4 != 0 || length > payload.size() - pos) return false;
    pos += length;
  }
  return false;
}

}  // namespace

void Analysis::prepare(double ts, const Decoded& d, Prepared& p) const {
  p = Prepared{};
  p.ts = ts;
  p.kind = d.kind;
  if (d.kind != Frame::kUdp) return;
  p.ntp = d.source_port == options_.port || d.destination_port == options_.port;
  if (!p.ntp) {
    p.source_port = d.source_port;
    p.destination_port = d.destination_port;
    return;
  }
  p.v4 = d.family == base::Family::kV4;
  p.ip_length = d.ip_length;
  p.direction = direction(d, options_);
  if (p.direction == Direction::kUnknown) return;
  p.kod = p.direction == Direction::kReply && d.payload.size() >= 2 && (d.payload[0] & 7) == 4 &&
          d.payload[1] == 0;
  p.nts = has_nts_fields(d.payload);
  p.ntsn = p.kod && p.nts && d.payload.size() >= 16 && d.payload[12] == 'N' && d.payload[13] == 'T' &&
           d.payload[14] == 'S' && d.payload[15] == 'N';
  p.key = clients::AddressKey::from(p.direction == Direction::kRequest ? d.source : d.destination);
  if (p.direction == Direction::kRequest) {
    p.software = fingerprint(d.payload);
    p.server = d.destination;
  }
  if (p.direction == Direction::kReply) {
    p.server = d.source;
    if (!p.kod && d.payload.size() >= 48 && (d.payload[0] & 7) == 4) {
      const auto ts64 = [&](size_t at) {
        uint64_t v = 0;
        for (size_t i = 0; i < 8; ++i) v = v << 8 | d.payload[at + i];
        return v;
      };
      const auto diff = static_cast<int64_t>(ts64(40) - ts64(32));  // transmit - receive, 32.32
      if (diff >= 0) p.processing_ns = static_cast<int64_t>(static_cast<double>(diff) * 1e9 / 4294967296.0);
    }
  }
  p.hash = clients::hash_key(p.key, seed_);
  p.client = true;
  __builtin_prefetch(&index_[p.hash >> shift_]);
}

Analysis::ServerStats& Analysis::server_stats(const base::IpAddress& a) {
  const auto key = clients::AddressKey::from(a);
  if (last_server_ == nullptr || !(key == last_server_key_)) {
    last_server_ = &servers_[key];  // std::map: the element stays where it is
    last_server_key_ = key;
  }
  return *last_server_;
}

std::optional<std::pair<uint16_t, uint64_t>> Analysis::busiest_other_udp_port() const {
  if (other_udp_ports_.empty()) return std::nullopt;
  const auto it = std::max_element(other_udp_ports_.begin(), other_udp_ports_.end());
  if (*it == 0) return std::nullopt;
  return std::pair<uint16_t, uint64_t>{static_cast<uint16_t>(it - other_udp_ports_.begin()), *it};
}

void Analysis::apply(const Prepared& p) {
  Totals& t = totals_;
  ++t.frames;
  if (!t.any) {
    t.first_s = t.last_s = p.ts;
    t.any = true;
  }
  t.first_s = std::min(t.first_s, p.ts);
  t.last_s = std::max(t.last_s, p.ts);
  switch (p.kind) {
    case Frame::kNotIp: ++t.not_ip; return;
    case Frame::kOtherIp: ++t.other_ip; return;
    case Frame::kFragment: ++t.fragments; return;
    case Frame::kTruncated: ++t.truncated; return;
    case Frame::kUdp: break;
  }
  if (!p.ntp) {
    ++t.other_udp;
    if (other_udp_ports_.empty()) other_udp_ports_.assign(65536, 0);
    ++other_udp_ports_[p.source_port];
    if (p.destination_port != p.source_port) ++other_udp_ports_[p.destination_port];
    return;
  }
  switch (p.direction) {
    case Direction::kRequest: {
      ++t.requests;
      ++(p.v4 ? t.requests_v4 : t.requests_v6);
      t.request_bytes += p.ip_length;
      if (p.nts) {
        ++t.nts_requests;
        t.nts_request_bytes += p.ip_length;
      }
      ClientRecord& r = find_or_add(p.key, p.hash);
      if (epoch_s_ < 0) epoch_s_ = p.ts;
      const double since = std::clamp((p.ts - epoch_s_) * 1e3, 0.0, 4.0e9);
      const auto now_ms = static_cast<uint32_t>(since);
      if (r.requests > 0 && now_ms > r.last_ms) {  // out-of-order frames make no gap
        const uint32_t gap = now_ms - r.last_ms;
        const int k = gap_bin_ms(gap);
        uint8_t& bin = r.gaps[static_cast<size_t>(k)];
        if (bin < 255) ++bin;
        if (k == 0)  // a running mean over the first 255, then a moving one
          r.fast_gap_ms = static_cast<uint16_t>(std::lround(r.fast_gap_ms + (static_cast<double>(gap) - r.fast_gap_ms) / bin));
      }
      r.last_ms = std::max(r.last_ms, now_ms);
      r.replay |= p.replay;
      r.software = p.software;
      ++server_stats(p.server).requests;
      ++r.requests;
      r.request_bytes += p.ip_length;
      return;
    }
    case Direction::kReply: {
      ++t.replies;
      ++(p.v4 ? t.replies_v4 : t.replies_v6);
      t.reply_bytes += p.ip_length;
      if (p.kod) ++t.kod_replies;
      if (p.nts) {
        ++t.nts_replies;
        t.nts_reply_bytes += p.ip_length;
      }
      if (p.ntsn) ++t.nts_naks;
      ServerStats& srv = server_stats(p.server);
      ++srv.replies;
      if (p.kod) ++srv.kod;
      if (p.processing_ns >= 0) ++srv.processing_ns.buckets[stats::bucket_index(static_cast<uint64_t>(p.processing_ns))];
      ClientRecord& r = find_or_add(p.key, p.hash);
      ++r.replies;
      r.reply_bytes += p.ip_length;
      return;
    }
    case Direction::kUnknown: ++t.unknown; return;
  }
}

Distribution distribution(std::span<const ClientRecord> clients) {
  Distribution d;
  for (const ClientRecord& r : clients) {
    if (r.requests == 0) continue;
    size_t b = 0;  // bucket b holds (2^(b-1), 2^b]
    while ((uint64_t{1} << b) < r.requests) ++b;
    if (d.buckets.size() <= b) {
      for (size_t k = d.buckets.size(); k <= b; ++k)
        d.buckets.push_back({k == 0 ? 1u : (1u << (k - 1)) + 1, 1u << k, 0, 0});
    }
    ++d.buckets[b].clients;
    d.buckets[b].requests += r.requests;
  }
  return d;
}

namespace {

// The n records first in `before`'s order among those `keep` accepts, first first: a heap of
// at most n pointers (no copy of millions of them to sort).
template <class Keep, class Before>
std::vector<const ClientRecord*> first_n(std::span<const ClientRecord> clients, size_t n, Keep keep, Before before) {
  std::vector<const ClientRecord*> heap;  // its top: the last of the n kept so far
  if (n == 0) return heap;
  heap.reserve(n + 1);
  for (const ClientRecord& r : clients) {
    if (!keep(r)) continue;
    if (heap.size() == n && !before(&r, heap.front())) continue;
    heap.push_back(&r);
    std::push_heap(heap.begin(), heap.end(), before);
    if (heap.size() > n) {
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.pop_back();
    }
  }
  std::sort_heap(heap.begin(), heap.end(), before);
  return heap;
}

}  // namespace

std::vector<Talker> top_talkers(std::span<const ClientRecord> clients, size_t n) {
  const auto busier = [](const ClientRecord* a, const ClientRecord* b) {
    if (a->requests != b->requests) return a->requests > b->requests;
    return a->key.bytes < b->key.bytes;
  };
  std::vector<Talker> out;
  for (const ClientRecord* r : first_n(clients, n, [](const ClientRecord& r) { return r.requests > 0; }, busier))
    out.push_back({r->key.address(), r->requests, r->request_bytes, r->reply_bytes});
  return out;
}

std::vector<ThresholdRow> thresholds(std::span<const ClientRecord> clients,
                                     const std::vector<uint32_t>& ns) {
  // No sort of the clients: each lands in the band between two thresholds (band j: more than
  // sorted[j - 1], at most sorted[j]; the last band: more than every threshold), and the rows
  // are running sums over the bands. Ten million clients: one pass.
  std::vector<uint32_t> sorted = ns;
  std::sort(sorted.begin(), sorted.end());
  struct Band {
    uint64_t clients = 0, requests = 0, reply_bytes = 0;
    Band& operator+=(const Band& o) {
      clients += o.clients;
      requests += o.requests;
      reply_bytes += o.reply_bytes;
      return *this;
    }
  };
  std::vector<Band> bands(sorted.size() + 1);
  for (const ClientRecord& r : clients) {
    if (r.requests == 0) continue;
    Band& band = bands[static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), r.requests) - sorted.begin())];
    ++band.clients;
    band.requests += r.requests;
    band.reply_bytes += r.reply_bytes;
  }
  Band all;
  for (const Band& band : bands) all += band;
  std::vector<ThresholdRow> rows;
  Band below;  // clients with at most the current threshold
  for (size_t j = 0; j < sorted.size(); ++j) {
    below += bands[j];
    ThresholdRow row;
    row.n = sorted[j];
    row.clients_at_most = below.clients;
    row.request_share_at_most = all.requests ? static_cast<double>(below.requests) / static_cast<double>(all.requests) : 0;
    row.clients_blocked = all.clients - below.clients;
    row.requests_cut = all.requests - below.requests;
    row.reply_bytes_cut = all.reply_bytes - below.reply_bytes;
    row.request_share_cut = all.requests ? static_cast<double>(row.requests_cut) / static_cast<double>(all.requests) : 0;
    rows.push_back(row);
  }
  return rows;
}

std::vector<uint32_t> default_thresholds(uint32_t max_requests) {
  std::vector<uint32_t> out;
  for (uint64_t decade = 1; decade <= 1'000'000'000; decade *= 10) {
    for (uint64_t m : {1, 2, 5}) {
      const uint64_t n = decade * m;
      out.push_back(static_cast<uint32_t>(n));
      if (n >= max_requests) return out;  // the last row blocks nobody
    }
  }
  return out;
}

std::vector<ClassRow> classes(std::span<const ClientRecord> clients) {
  std::vector<ClassRow> rows(kClientClasses);
  for (int k = 0; k < kClientClasses; ++k) rows[static_cast<size_t>(k)].software = static_cast<ClientClass>(k);
  for (const ClientRecord& r : clients) {
    if (r.requests == 0) continue;
    ClassRow& row = rows[static_cast<size_t>(r.software)];
    ++row.clients;
    row.requests += r.requests;
  }
  return rows;
}

std::vector<IntervalRow> intervals(std::span<const ClientRecord> clients) {
  std::vector<IntervalRow> rows(kGapBins);
  for (int k = 0; k < kGapBins; ++k) rows[static_cast<size_t>(k)].bin = k;
  for (const ClientRecord& r : clients) {
    const int k = r.median_gap_bin();
    if (k < 0) continue;
    ++rows[static_cast<size_t>(k)].clients;
    rows[static_cast<size_t>(k)].requests += r.requests;
  }
  return rows;
}

std::vector<FastPoller> fast_pollers(std::span<const ClientRecord> clients, double seconds, size_t n,
                                     uint64_t& total) {
  total = 0;
  const int limit = gap_bin(seconds);
  const auto fast = [&](const ClientRecord& r) {
    const int k = r.median_gap_bin();
    if (k < 0 || k >= limit) return false;
    ++total;
    return true;
  };
  const auto busier = [](const ClientRecord* a, const ClientRecord* b) {
    if (a->requests != b->requests) return a->requests > b->requests;
    const int ka = a->median_gap_bin(), kb = b->median_gap_bin();
    if (ka != kb) return ka < kb;
    return a->key < b->key;  // one order every run
  };
  std::vector<FastPoller> out;
  for (const ClientRecord* r : first_n(clients, n, fast, busier)) out.push_back({r->key.address(), r->requests, r->median_gap_bin(), r->median_interval_s()});
  return out;
}

}  // namespace strata::analyze
