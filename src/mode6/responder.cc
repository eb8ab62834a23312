// The mode-6 responder (see responder.h).
#include "mode6/responder.h"

#include <algorithm>
#include <memory>
#include <optional>

namespace strata::mode6 {

using stats::Counter;

namespace {

constexpr int64_t kSnapshotIdleNs = 60'000'000'000;
constexpr int64_t kSnapshotShareNs = 1'000'000'000;  // walks starting within 1 s share a snapshot
constexpr double kBuildRate = 2;                     // snapshot builds per second, in the long run
constexpr double kBuildBurst = 4;
constexpr size_t kMaxBuckets = 4096;
// Signed requests remembered against replay: ntpq sends a few per run, so 65,536 hold hours
// of monitoring; past a day an entry is forgotten (a replay needs a captured packet anyway).
constexpr size_t kMaxSeenMacs = 65536;
constexpr int64_t kSeenMacNs = 86'400'000'000'000;
constexpr uint32_t kMruRowLimit = 256;   // ntpd's MRU_ROW_LIMIT
constexpr uint32_t kMruFragsLimit = 128;  // ntpd's MRU_FRAGS_LIMIT

size_t total_size(const std::vector<std::vector<uint8_t>>& d) {
  size_t n = 0;
  for (const auto& x : d) n += x.size();
  return n;
}

}  // namespace

size_t Responder::AddressHash::operator()(const base::IpAddress& a) const {
  uint64_t h = 0xcbf29ce484222325ULL ^ static_cast<uint64_t>(a.family);
  for (uint8_t b : a.bytes) h = (h ^ b) * 0x100000001b3ULL;
  return static_cast<size_t>(h);
}

uint16_t system_status(const SystemView& v) {
  const bool synced = v.time.synchronised;
  const unsigned leap = synced ? static_cast<unsigned>(v.time.leap) : 3;
  // Clock source: 6 (NTP) for a server following chronyd/ntpd or the kernel clock they
  // discipline, 5 (local) for the local source, 0 (unspecified) while unsynchronised.
  const unsigned source = !synced ? 0 : v.time.source == clock::Source::kLocal ? 5 : 6;
  const unsigned event = synced ? 5 : 0;  // clock_sync
  return static_cast<uint16_t>(leap << 14 | source << 8 | 1u << 4 | event);
}

Responder::Responder(const ResponderOptions& options, Sources& sources,
                     stats::WorkerCounters& counters)
    : options_(options), sources_(sources), counters_(counters) {}

bool Responder::take_token(const base::IpAddress& peer, int64_t now_ns) {
  if (buckets_.size() >= kMaxBuckets && buckets_.find(peer) == buckets_.end()) {
    // Forget the sources whose bucket has refilled; if none has, start over (a flood of
    // sources then gets a fresh burst each, but never more than the queue lets through).
    std::erase_if(buckets_, [&](const auto& kv) {
      return kv.second.tokens + (now_ns - kv.second.last_ns) * 1e-9 * options_.rate >= options_.burst;
    });
    if (buckets_.size() >= kMaxBuckets) buckets_.clear();
  }
  auto [it, created] = buckets_.try_emplace(peer, Bucket{options_.burst, now_ns});
  Bucket& b = it->second;
  if (!created) {
    b.tokens = std::min(options_.burst, b.tokens + std::max<int64_t>(0, now_ns - b.last_ns) * 1e-9 * options_.rate);
    b.last_ns = now_ns;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

bool Responder::replayed(std::span<const uint8_t> mac, const base::IpAddress& peer, int64_t now_ns) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : mac) h = (h ^ b) * 0x100000001b3ULL;
  if (seen_macs_.size() >= kMaxSeenMacs) {
    std::erase_if(seen_macs_, [&](const auto& kv) { return now_ns - kv.second.when_ns > kSeenMacNs; });
    if (seen_macs_.size() >= kMaxSeenMacs) {  // all recent: forget the older half
      std::vector<int64_t> times;
      for (const auto& kv : seen_macs_) times.push_back(kv.second.when_ns);
      std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
      const int64_t median = times[times.size() / 2];
      std::erase_if(seen_macs_, [&](const auto& kv) { return kv.second.when_ns <= median; });
    }
  }
  auto [it, created] = seen_macs_.try_emplace(h, Seen{peer, now_ns});
  if (created || now_ns - it->second.when_ns > kSeenMacNs) {
    it->second = Seen{peer, now_ns};
    return false;
  }
  if (!(it->second.source == peer)) return true;
  it->second.when_ns = now_ns;
  return false;
}

std::vector<std::vector<uint8_t>> Responder::handle(const Incoming& in, const Access& access) {
  counters_.add(Counter::control_requests);
  Request r;
  const ParseResult parsed = parse(in.data, r);
  if (parsed == ParseResult::kDrop) {
    counters_.add(Counter::drop_control_bad);
    return {};
  }
  // A MAC must verify with a trusted key or the control key; a bad one gets no answer.
  const auth::Key* key = nullptr;
  if (parsed == ParseResult::kOk && r.has_mac) {
    key = access.keys.find(r.key_id);
    if (key == nullptr || !(key->trusted || key->id == access.control_key) ||
        !auth::verify(*key, r.signed_part, r.mac)) {
      counters_.add(Counter::drop_control_bad);
      return {};
    }
  }
  const bool control_key = key != nullptr && access.control_key != 0 && key->id == access.control_key;
  // What opens mode 6 beyond the access rules: the control key, and a time-client key only
  // when configured to ([mode6] time_keys).
  const bool authorised = control_key || (key != nullptr && options_.time_keys && key->trusted);
  const policy::Verdict pv = access.policy.lookup(in.peer.address);
  if (pv.access == policy::Access::kIgnore || !(pv.query || authorised)) {
    counters_.add(Counter::drop_mode_control);
    return {};
  }
  const bool loopback = in.peer.address.is_loopback();
  // The MAC does not cover the source address: a signed request captured on the way and
  // sent again from a forged source would draw its long answer to that source. Off loopback
  // a signed request is answered for the first source that sent it only.
  if (key != nullptr && !loopback && replayed(r.mac, in.peer.address, in.now_ns)) {
    counters_.add(Counter::drop_control_bad);
    return {};
  }
  if (!take_token(in.peer.address, in.now_ns)) {
    counters_.add(Counter::drop_control_limited);
    return {};
  }
  // No amplification: a source off loopback that nothing authorises (a `query` rule
  // elsewhere, perhaps a forged address in it) gets nothing longer than what it sent. The
  // budget is known before any work, so a request cannot make stratad compute what it would
  // not send.
  const size_t budget = (!authorised && !loopback) ? in.data.size() : SIZE_MAX;
  view_ = sources_.system();
  view_.keys = static_cast<uint32_t>(access.keys.size());
  if (view_.mru_oldest_age_s) {  // a scan of the client tables: once per request at most
    auto scan = std::move(view_.mru_oldest_age_s);
    auto cached = std::make_shared<std::optional<double>>();
    view_.mru_oldest_age_s = [scan = std::move(scan), cached] {
      if (!*cached) *cached = scan();
      return **cached;
    };
  }
  leap_ = view_.time.synchronised ? static_cast<uint8_t>(view_.time.leap) : 3;
  std::vector<std::vector<uint8_t>> out;
  if (parsed == ParseResult::kBadFormat) {
    out = {build_error(r, kErrBadFormat, key, leap_)};
  } else {
    out = dispatch(r, in, key, authorised, budget);
  }
  // The 12-octet error says to authenticate.
  if (total_size(out) > budget) out = {build_error(r, kErrPermission, nullptr, leap_)};
  for (const auto& d : out)
    if (d.size() >= 2 && (d[1] & 0x40) != 0) counters_.add(Counter::control_errors);
  return out;
}

std::vector<std::vector<uint8_t>> Responder::dispatch(const Request& r, const Incoming& in,
                                                      const auth::Key* key, bool control_key, size_t budget) {
  const uint16_t status = system_status(view_);
  switch (r.opcode) {
    case kUnspec:
      if (r.association != 0) return {build_error(r, kErrBadAssociation, key, leap_)};
      return build_response(r, status, "", key, leap_);
    case kReadStatus:
      // No associations: stratad has no peers of its own (ntpq -p shows an empty table).
      if (r.association != 0) return {build_error(r, kErrBadAssociation, key, leap_)};
      return build_response(r, status, "", key, leap_);
    case kReadVariables:
      if (r.association != 0) return {build_error(r, kErrBadAssociation, key, leap_)};
      return read_variables(r, key, budget);
    case kReadClock:
      return {build_error(r, kErrBadAssociation, key, leap_)};  // no reference clocks
    case kRequestNonce: {
      VarWriter w(kMaxData);
      w.add("nonce", nonces_.make(base::to_ntp(base::RealTime{base::Nanos{in.now_ns}}), in.peer));
      return build_response(r, status, w.finish(), key, leap_);
    }
    case kReadMru:
      // Every client's address: private unless configured otherwise ([mode6] mrulist).
      if (options_.mrulist == MrulistAccess::kControlKey && !control_key)
        return {build_error(r, kErrPermission, key, leap_)};
      return read_mru(r, in, key);
    case kWriteVariables:
    case kWriteClock:
    case kConfigure:
    case kSaveConfig:
    case kReadOrderedList:
      // Changing the server over mode 6 is not offered (the config file and `strata reload`
      // are the way); ifstats/reslist need the control key in ntpd and are not served.
      return {build_error(r, control_key ? kErrBadOpcode : kErrPermission, key, leap_)};
    default:
      return {build_error(r, kErrBadOpcode, key, leap_)};
  }
}

std::vector<std::vector<uint8_t>> Responder::read_variables(const Request& r, const auth::Key* key,
                                                            size_t budget) {
  std::vector<std::string_view> names = split_names(data_text(r));
  if (names.empty()) names = default_variables();
  VarWriter w(kClientMaxFrags * kMaxData);
  for (std::string_view name : names) {
    // A name=value item (a write attempt through READVAR) reads the name.
    const std::string_view bare = name.substr(0, name.find('='));
    const auto value = variable(bare, view_);
    if (!value) return {build_error(r, kErrUnknownVariable, key, leap_)};
    if (!w.add(bare, *value)) break;  // cannot happen with the names we have
    if (kHeaderSize + w.text().size() > budget) return {build_error(r, kErrPermission, nullptr, leap_)};
  }
  return build_response(r, system_status(view_), w.finish(), key, leap_);
}

std::vector<std::vector<uint8_t>> Responder::read_mru(const Request& r, const Incoming& in,
                                                      const auth::Key* key) {
  const base::NtpTimestamp now = base::to_ntp(base::RealTime{base::Nanos{in.now_ns}});
  const auto q = parse_mru_query(data_text(r));
  // ntpd sends nothing without a valid nonce, or when a value does not parse.
  if (!q || !nonces_.valid(q->nonce, now, in.peer)) {
    counters_.add(Counter::drop_control_bad);
    return {};
  }
  // ntpd's read_mru_list, to the letter: limit must be 1..256 only when frags is absent (or
  // 0); frags at most 128; a zero or absent value means "the most". So `limit=1000` with
  // frags (what ntpq sends once it has raised its limit) is served, in at most frags
  // datagrams.
  const uint32_t frags_asked = q->frags.value_or(0), limit_asked = q->limit.value_or(0);
  if ((frags_asked == 0 && !(limit_asked > 0 && limit_asked <= kMruRowLimit)) ||
      frags_asked > kMruFragsLimit)
    return {build_error(r, kErrBadValue, key, leap_)};
  MruQuery query = *q;
  if (limit_asked == 0) query.limit.reset();  // no row limit: frags bounds the answer
  uint32_t frags = frags_asked == 0 ? kMruFragsLimit : frags_asked;
  frags = std::min(frags, options_.max_frags);
  // A walk starts (no resume points), or the filters changed, or the snapshot is stale. A
  // walk starting within a second of the last build, with its filters, shares that snapshot;
  // builds (a scan of every client) are held to a few per second whatever the requests.
  size_t max = options_.mrulist_max;
  if (q->recent) max = std::min<size_t>(max, *q->recent);
  const bool same = have_snapshot_ && snapshot_.filter() == q->filter && snapshot_max_ == max;
  const bool fresh = same && in.now_ns - snapshot_built_ns_ < kSnapshotShareNs;
  if ((q->resume.empty() && !fresh) || !same || in.now_ns - snapshot_used_ns_ > kSnapshotIdleNs) {
    build_tokens_ = std::min(kBuildBurst, build_tokens_ + std::max<int64_t>(0, in.now_ns - build_refill_ns_) * 1e-9 * kBuildRate);
    build_refill_ns_ = in.now_ns;
    if (build_tokens_ < 1) {
      counters_.add(Counter::drop_control_limited);
      return {};
    }
    build_tokens_ -= 1;
    snapshot_.build([&](const std::function<void(const MruEntry&)>& visit) { sources_.for_each_client(visit); },
                    q->filter, now.raw, max);
    have_snapshot_ = true;
    snapshot_built_ns_ = in.now_ns;
    snapshot_max_ = max;
  }
  snapshot_used_ns_ = in.now_ns;
  const MruResponse resp =
      write_mru_response(snapshot_, query, nonces_.make(now, in.peer), now.raw, frags * kMaxData);
  if (resp.kind == MruResponse::Kind::kUnknownVariable)
    return {build_error(r, kErrUnknownVariable, key, leap_)};
  return build_response(r, system_status(view_), resp.data, key, leap_);
}

}  // namespace strata::mode6
