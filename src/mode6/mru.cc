// mrulist (see mru.h).
#include "mode6/mru.h"

#include <fmt/format.h>
#include <nettle/sha2.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <random>

#include "base/bytes.h"
#include "mode6/codec.h"

namespace strata::mode6 {

namespace {

constexpr uint64_t kNonceLifetime = 16;  // seconds (NONCE_TIMEOUT)
constexpr uint64_t kSaltLifetime = 3600;

std::string lfp(uint64_t t) {
  return fmt::format("0x{:08x}.{:08x}", static_cast<uint32_t>(t >> 32), static_cast<uint32_t>(t));
}

std::optional<uint64_t> parse_lfp(std::string_view s) {
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  uint32_t hi = 0, lo = 0;
  const std::string_view a = s.substr(0, dot), b = s.substr(dot + 1);
  auto r1 = std::from_chars(a.data(), a.data() + a.size(), hi, 16);
  auto r2 = std::from_chars(b.data(), b.data() + b.size(), lo, 16);
  if (r1.ec != std::errc{} || r1.ptr != a.data() + a.size() || r2.ec != std::errc{} ||
      r2.ptr != b.data() + b.size())
    return std::nullopt;
  return uint64_t{hi} << 32 | lo;
}

std::optional<uint64_t> parse_uint(std::string_view s) {
  const std::string text(s);
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 0);  // decimal or 0x hex
  if (errno != 0 || end != text.c_str() + text.size() || text[0] == '-') return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  const std::string text(s);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(v >= 0)) return std::nullopt;
  return v;
}

std::optional<base::IpAddress> parse_host(std::string_view s) {
  if (auto ep = base::Endpoint::parse(s, uint16_t{0})) return ep->address;
  return base::IpAddress::parse(s);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) || s.front() == '\0')) s.remove_prefix(1);
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == '\0')) s.remove_suffix(1);
  return s;
}

bool before(const MruEntry& a, const MruEntry& b) {
  if (a.last != b.last) return a.last < b.last;
  return a.address.bytes < b.address.bytes;
}

}  // namespace

std::string mru_address(const base::IpAddress& a) {
  return base::Endpoint{a, 0}.to_string();
}

std::optional<MruQuery> parse_mru_query(std::string_view data) {
  MruQuery q;
  std::array<std::optional<base::IpAddress>, 16> addrs;
  std::array<std::optional<uint64_t>, 16> lasts;
  size_t i = 0;
  while (i <= data.size()) {
    size_t j = data.find(',', i);
    if (j == std::string_view::npos) j = data.size();
    const std::string_view item = trim(data.substr(i, j - i));
    i = j + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;  // a bare name: nothing to take from it
    const std::string_view name = trim(item.substr(0, eq)), value = trim(item.substr(eq + 1));
    auto as_u32 = [&](std::optional<uint32_t>& out) {
      const auto v = parse_uint(value);
      if (!v || *v > 0xffffffffULL) return false;
      out = static_cast<uint32_t>(*v);
      return true;
    };
    bool ok = true;
    if (name == "nonce") {
      q.nonce = std::string(value);
    } else if (name == "frags") {
      ok = as_u32(q.frags);
    } else if (name == "limit") {
      ok = as_u32(q.limit);
    } else if (name == "recent") {
      ok = as_u32(q.recent);
    } else if (name == "mincount" || name == "mindrop") {
      std::optional<uint32_t> v;
      ok = as_u32(v);
      if (ok) (name == "mincount" ? q.filter.mincount : q.filter.mindrop) = *v;
    } else if (name == "resall" || name == "resany") {
      const auto v = parse_uint(value);
      ok = v && *v <= 0xffff;
      if (ok) (name == "resall" ? q.filter.resall : q.filter.resany) = static_cast<uint16_t>(*v);
    } else if (name == "maxlstint" || name == "minlstint") {
      const auto v = parse_double(value);
      ok = v.has_value();
      if (ok) (name == "maxlstint" ? q.filter.maxlstint : q.filter.minlstint) = *v;
    } else if (name == "minscore") {
      ok = parse_double(value).has_value();  // stratad keeps no per-address score: no filter
    } else if (name == "laddr") {
      q.filter.laddr = parse_host(value);
      ok = q.filter.laddr.has_value();
    } else if (name.starts_with("addr.") || name.starts_with("last.")) {
      const std::string_view idx = name.substr(5);
      unsigned n = 0;
      const auto r = std::from_chars(idx.data(), idx.data() + idx.size(), n);
      if (r.ec != std::errc{} || r.ptr != idx.data() + idx.size() || n >= 16) continue;
      if (name[0] == 'a') {
        addrs[n] = parse_host(value);
        ok = addrs[n].has_value();
      } else {
        lasts[n] = parse_lfp(value);
        ok = lasts[n].has_value();
      }
    }
    // Other names (ntpd's random "xyz.N" tags, future parameters) are skipped. A value that
    // does not parse is ignored, as ntpd's sscanf leaves the parameter at its default: no
    // check here is stricter than ntpd's (a request it answers, stratad answers).
    if (!ok) {
      if (name == "frags") q.frags.reset();
      if (name == "limit") q.limit.reset();
      if (name == "recent") q.recent.reset();
    }
  }
  // Resume points as ntpd counts them: addr.N with last.N from 0 on, up to the first gap.
  for (size_t n = 0; n < 16 && addrs[n] && lasts[n]; ++n) q.resume.push_back({*addrs[n], *lasts[n]});
  return q;
}

NonceKeeper::NonceKeeper() {
  std::random_device rd;
  for (auto& b : salt_) b = static_cast<uint8_t>(rd());
  for (auto& b : previous_) b = static_cast<uint8_t>(rd());
}

uint32_t NonceKeeper::hash(const std::array<uint8_t, 16>& salt, uint64_t time,
                           const base::Endpoint& peer) const {
  sha256_ctx c;
  sha256_init(&c);
  uint8_t buf[16 + 8 + 16 + 2 + 1];
  std::copy(salt.begin(), salt.end(), buf);
  base::store_be64(buf + 16, time);
  std::copy(peer.address.bytes.begin(), peer.address.bytes.end(), buf + 24);
  base::store_be16(buf + 40, peer.port);
  buf[42] = static_cast<uint8_t>(peer.address.family);
  sha256_update(&c, sizeof buf, buf);
  sha256_update(&c, salt.size(), salt.data());
  uint8_t digest[SHA256_DIGEST_SIZE];
  sha256_digest(&c, sizeof digest, digest);
  return base::load_be32(digest);
}

void NonceKeeper::rotate(base::NtpTimestamp now) {
  const uint64_t s = now.raw >> 32;
  if (salt_since_ == 0) salt_since_ = s;
  if (s - salt_since_ < kSaltLifetime) return;
  previous_ = salt_;
  std::random_device rd;
  for (auto& b : salt_) b = static_cast<uint8_t>(rd());
  salt_since_ = s;
}

std::string NonceKeeper::make(base::NtpTimestamp now, const base::Endpoint& peer) {
  rotate(now);
  return fmt::format("{:08x}{:08x}{:08x}", static_cast<uint32_t>(now.raw >> 32),
                     static_cast<uint32_t>(now.raw), hash(salt_, now.raw, peer));
}

bool NonceKeeper::valid(std::string_view nonce, base::NtpTimestamp now, const base::Endpoint& peer) {
  rotate(now);
  if (nonce.size() != 24) return false;
  uint32_t words[3];
  for (int k = 0; k < 3; ++k) {
    const std::string_view w = nonce.substr(static_cast<size_t>(k) * 8, 8);
    const auto r = std::from_chars(w.data(), w.data() + 8, words[k], 16);
    if (r.ec != std::errc{} || r.ptr != w.data() + 8) return false;
  }
  const uint64_t time = uint64_t{words[0]} << 32 | words[1];
  const uint64_t now_s = now.raw >> 32, then_s = time >> 32;
  if (then_s > now_s || now_s - then_s >= kNonceLifetime) return false;
  return hash(salt_, time, peer) == words[2] || hash(previous_, time, peer) == words[2];
}

bool passes(const MruEntry& e, const MruFilter& f, uint64_t now) {
  if (e.count < f.mincount || e.drops < f.mindrop) return false;
  if (f.resall != 0 && (e.restrict & f.resall) != f.resall) return false;
  if (f.resany != 0 && (e.restrict & f.resany) == 0) return false;
  const double age = now > e.last ? static_cast<double>(now - e.last) / 4294967296.0 : 0;
  if (f.maxlstint && age > *f.maxlstint) return false;
  if (f.minlstint && age < *f.minlstint) return false;
  if (f.laddr && !(e.local == *f.laddr)) return false;
  return true;
}

void MruSnapshot::build(std::vector<MruEntry> entries, const MruFilter& filter, uint64_t now,
                        size_t max_entries) {
  build([&](const std::function<void(const MruEntry&)>& visit) { for (const auto& e : entries) visit(e); },
        filter, now, max_entries);
}

void MruSnapshot::build(const std::function<void(const std::function<void(const MruEntry&)>&)>& scan,
                        const MruFilter& filter, uint64_t now, size_t max_entries) {
  // A min-heap on the order of the walk: its top is the oldest kept, replaced by anything
  // newer once the heap holds max_entries.
  std::vector<MruEntry> heap;
  const auto newer_first = [](const MruEntry& a, const MruEntry& b) { return before(b, a); };
  scan([&](const MruEntry& e) {
    if (max_entries == 0 || !passes(e, filter, now)) return;
    if (heap.size() < max_entries) {
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), newer_first);
    } else if (before(heap.front(), e)) {
      std::pop_heap(heap.begin(), heap.end(), newer_first);
      heap.back() = e;
      std::push_heap(heap.begin(), heap.end(), newer_first);
    }
  });
  std::sort(heap.begin(), heap.end(), before);
  entries_ = std::move(heap);
  filter_ = filter;
}

std::optional<size_t> MruSnapshot::resume_after(const std::vector<MruQuery::Resume>& points) const {
  for (const auto& p : points) {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), p.last,
                               [](const MruEntry& e, uint64_t last) { return e.last < last; });
    for (; it != entries_.end() && it->last == p.last; ++it)
      if (it->address == p.address) return static_cast<size_t>(it - entries_.begin()) + 1;
  }
  return std::nullopt;
}

MruResponse write_mru_response(const MruSnapshot& snapshot, const MruQuery& query,
                               const std::string& fresh_nonce, uint64_t now, size_t max_bytes) {
  MruResponse out;
  const auto& entries = snapshot.entries();
  VarWriter w(max_bytes);
  size_t start = 0;
  if (!query.resume.empty()) {
    const auto after = snapshot.resume_after(query.resume);
    if (!after) {
      out.kind = MruResponse::Kind::kUnknownVariable;
      return out;
    }
    start = *after;
    const MruEntry& older = entries[start - 1];
    // last.older before addr.older: ntp.org's ntpq needs that order.
    w.add("last.older", lfp(older.last));
    w.add("addr.older", mru_address(older.address));
  }
  w.add("nonce", fresh_nonce);
  // Room kept for the end marker: "now=0x........ ........, last.newest=0x........ ........".
  constexpr size_t kTrailer = 64;
  const uint64_t limit = query.limit.value_or(UINT32_MAX);
  size_t i = start;
  std::vector<std::string> items;
  for (; i < entries.size() && out.rows < limit; ++i) {
    const MruEntry& e = entries[i];
    const size_t n = out.rows;
    items = {fmt::format("addr.{}={}", n, mru_address(e.address)),
             fmt::format("last.{}={}", n, lfp(e.last)),
             fmt::format("first.{}={}", n, lfp(e.first)),
             fmt::format("ct.{}={}", n, e.count),
             fmt::format("mv.{}={}", n, e.mode_version),
             fmt::format("rs.{}=0x{:x}", n, e.restrict),
             fmt::format("dr.{}={}", n, e.drops)};
    size_t size = kTrailer;
    for (const auto& item : items) size += item.size() + 3;
    if (!w.fits(size)) break;
    for (const auto& item : items) w.add_raw(item);
    ++out.rows;
  }
  if (i == entries.size()) {
    w.add("now", lfp(now));
    if (out.rows > 0) w.add("last.newest", lfp(entries[i - 1].last));
    out.complete = true;
  }
  out.data = w.finish();
  return out;
}

}  // namespace strata::mode6
