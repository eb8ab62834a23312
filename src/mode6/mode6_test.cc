// Unit tests of mode 6: the codec, the variables ntpq reads, the mrulist walk and the
// responder's access, rate and size rules. The real ntpq is in tests/system/test_ntpq.py.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "base/bytes.h"
#include "mode6/codec.h"
#include "mode6/mru.h"
#include "mode6/responder.h"
#include "mode6/vars.h"

namespace strata::mode6 {
namespace {

std::vector<uint8_t> request(uint8_t opcode, std::string_view data = "", uint16_t seq = 7,
                             uint8_t version = 2) {
  std::vector<uint8_t> p(kHeaderSize + data.size());
  p[0] = static_cast<uint8_t>(version << 3 | 6);
  p[1] = opcode;
  base::store_be16(&p[2], seq);
  base::store_be16(&p[10], static_cast<uint16_t>(data.size()));
  std::copy(data.begin(), data.end(), p.begin() + kHeaderSize);
  p.resize((p.size() + 3) / 4 * 4, 0);
  return p;
}

// Pads to `align` and appends key's MAC, as ntpq does (align 8) or might (4).
std::vector<uint8_t> sign(std::vector<uint8_t> p, const auth::Key& key, size_t align = 8) {
  p.resize((p.size() + align - 1) / align * align, 0);
  const size_t at = p.size();
  p.resize(at + auth::kMaxMac);
  p.resize(at + auth::sign(key, {p.data(), at}, {p.data() + at, auth::kMaxMac}));
  return p;
}

auth::Key md5_key(uint32_t id, std::string_view secret) {
  auth::Key k;
  k.id = id;
  k.algorithm = auth::Algorithm::kMd5;
  std::copy(secret.begin(), secret.end(), k.secret.begin());
  k.secret_length = static_cast<uint8_t>(secret.size());
  return k;
}

std::string payload(const std::vector<std::vector<uint8_t>>& frags) {
  std::string out;
  for (const auto& f : frags) {
    const size_t count = base::load_be16(&f[10]);
    out.append(reinterpret_cast<const char*>(f.data()) + kHeaderSize, count);
  }
  return out;
}

TEST(Mode6Codec, ParseDropsWhatNtpdDrops) {
  Request r;
  EXPECT_EQ(parse(std::vector<uint8_t>(11, 0x16), r), ParseResult::kDrop);
  auto p = request(kReadVariables);
  EXPECT_EQ(parse(p, r), ParseResult::kOk);
  EXPECT_EQ(r.version, 2);
  EXPECT_EQ(r.opcode, kReadVariables);
  EXPECT_EQ(r.sequence, 7);
  for (uint8_t bit : {0x80, 0x40, 0x20}) {  // response, error, more
    auto q = p;
    q[1] |= bit;
    EXPECT_EQ(parse(q, r), ParseResult::kDrop);
  }
  auto q = p;
  q[9] = 4;  // offset != 0
  EXPECT_EQ(parse(q, r), ParseResult::kDrop);
  q = p;
  q[0] = 5 << 3 | 6;  // VN 5
  EXPECT_EQ(parse(q, r), ParseResult::kDrop);
  q = request(kReadVariables, "stratum");
  q[11] = 200;  // count beyond the datagram
  EXPECT_EQ(parse(q, r), ParseResult::kBadFormat);
  q = request(kReadVariables, "stratum");
  q.push_back(0);  // not a multiple of 4
  EXPECT_EQ(parse(q, r), ParseResult::kBadFormat);
}

TEST(Mode6Codec, FindsTheMacAtEightOrFourAlignment) {
  const auth::Key key = md5_key(5, "secret");
  for (size_t align : {8, 4}) {
    // 12 + 5 = 17: padded to 24 (8) or 20 (4), so the two positions differ.
    const auto p = sign(request(kReadVariables, "leap,"), key, align);
    Request r;
    ASSERT_EQ(parse(p, r), ParseResult::kOk);
    ASSERT_TRUE(r.has_mac) << align;
    EXPECT_EQ(r.key_id, 5u);
    EXPECT_EQ(data_text(r), "leap,");
    EXPECT_TRUE(auth::verify(key, r.signed_part, r.mac));
  }
  Request r;
  ASSERT_EQ(parse(request(kReadVariables, "leap"), r), ParseResult::kOk);
  EXPECT_FALSE(r.has_mac);
}

TEST(Mode6Codec, ResponsesAreFragmentedPaddedAndSigned) {
  Request r;
  ASSERT_EQ(parse(request(kReadVariables), r), ParseResult::kOk);
  std::string data(1000, 'x');
  data[999] = 'y';
  const auto frags = build_response(r, 0x0615, data, nullptr, 0);
  ASSERT_EQ(frags.size(), 3u);
  size_t offset = 0;
  for (size_t i = 0; i < frags.size(); ++i) {
    const auto& f = frags[i];
    EXPECT_EQ(f.size() % 4, 0u);
    EXPECT_EQ(f[0], 2 << 3 | 6);
    EXPECT_EQ(f[1] & 0x80, 0x80);
    EXPECT_EQ((f[1] & 0x20) != 0, i + 1 < frags.size());  // M on all but the last
    EXPECT_EQ(f[1] & 0x1f, kReadVariables);
    EXPECT_EQ(base::load_be16(&f[2]), 7);
    EXPECT_EQ(base::load_be16(&f[4]), 0x0615);
    EXPECT_EQ(base::load_be16(&f[8]), offset);
    const size_t count = base::load_be16(&f[10]);
    EXPECT_LE(count, kMaxData);
    for (size_t k = kHeaderSize + count; k < f.size(); ++k) EXPECT_EQ(f[k], 0);  // zero padding
    offset += count;
  }
  EXPECT_EQ(payload(frags), data);

  const auth::Key key = md5_key(9, "k");
  const auto signed_frags = build_response(r, 0, "a=1", &key, 0);
  ASSERT_EQ(signed_frags.size(), 1u);
  const auto& f = signed_frags[0];
  ASSERT_EQ(f.size(), 16u + 20u);  // 12 + 3 padded to 8, then key id + MD5
  EXPECT_TRUE(auth::verify(key, {f.data(), 16}, {f.data() + 16, 20}));
  const auto e = build_error(r, kErrUnknownVariable, nullptr, 3);
  ASSERT_EQ(e.size(), kHeaderSize);
  EXPECT_EQ(e[0] >> 6, 3);
  EXPECT_EQ(e[1], 0x80 | 0x40 | kReadVariables);
  EXPECT_EQ(base::load_be16(&e[4]), kErrUnknownVariable << 8);
}

TEST(Mode6Codec, VarWriterBreaksLinesLikeNtpd) {
  VarWriter w(kMaxData);
  for (int i = 0; i < 15; ++i) ASSERT_TRUE(w.add(fmt::format("name{}", i), "0x12345678.9abcdef0"));
  const std::string text = w.finish();
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end - start, 73u);
    start = end + 2;
  }
  VarWriter small(20);
  EXPECT_TRUE(small.add("a", "1"));
  EXPECT_FALSE(small.add("toolong", "0123456789"));
  EXPECT_EQ(small.text(), "a=1");
}

SystemView sample_view() {
  SystemView v;
  v.time.synchronised = true;
  v.time.leap = wire::Leap::kNone;
  v.time.stratum = 2;
  v.time.reference_id = 0xC0000201;
  v.time.root_delay = 0.0015;
  v.time.root_dispersion = 0.002;
  v.time.as_of = base::RealTime{std::chrono::seconds(1'800'000'000)};
  v.now = base::to_ntp(v.time.as_of);
  v.uptime_s = 3725.6;
  v.counters[stats::index(stats::Counter::received)] = 1000;
  v.counters[stats::index(stats::Counter::processed)] = 990;
  v.control_requests = 4;
  v.version = "stratad test";
  return v;
}

TEST(Mode6Vars, EveryNameNtpqAsksForIsKnown) {
  const SystemView v = sample_view();
  // NTPsec 1.2.2's and ntp.org's lists (protocols.md 2.8).
  std::vector<std::string> names = {
      "ss_uptime", "ss_numctlreq", "mru_enabled", "mru_hashslots", "mru_depth", "mru_deepest",
      "mru_maxdepth", "mru_mindepth", "mru_maxage", "mru_minage", "mru_mem", "mru_maxmem",
      "mru_exists", "mru_new", "mru_recycleold", "mru_recyclefull", "mru_none", "mru_oldest_age",
      "iostats_reset", "total_rbuf", "free_rbuf", "used_rbuf", "rbuf_lowater", "io_dropped",
      "io_ignored", "io_received", "io_sent", "io_sendfailed", "io_wakeups", "io_goodwakeups",
      "peeradr", "peermode", "leap", "stratum", "precision", "rootdelay", "rootdisp", "rootdist",
      "refid", "reftime", "sys_jitter", "clk_jitter", "clk_wander", "bcastdelay", "authdelay"};
  for (const char* s : {"ss_reset", "ss_received", "ss_thisver", "ss_oldver", "ss_ver1",
                        "ss_ver1client", "ss_ver1zero", "ss_ver1symm", "ss_badformat", "ss_badauth",
                        "ss_declined", "ss_restricted", "ss_limited", "ss_kodsent", "ss_processed"}) {
    names.push_back(s);
    names.push_back(std::string(s) + "_r");
  }
  for (auto n : default_variables()) names.emplace_back(n);
  for (const auto& n : names) EXPECT_TRUE(variable(n, v).has_value()) << n;
  EXPECT_FALSE(variable("bogus", v).has_value());
  EXPECT_FALSE(variable("ss_bogus_r", v).has_value());

  EXPECT_EQ(*variable("leap", v), "0");  // a plain integer (NTPsec indexes a tuple with it)
  EXPECT_EQ(*variable("stratum", v), "2");
  EXPECT_EQ(*variable("refid", v), "192.0.2.1");
  EXPECT_EQ(*variable("rootdelay", v), "1.500");
  EXPECT_EQ(*variable("rootdist", v), "2.750");
  EXPECT_EQ(*variable("peeradr", v), "0.0.0.0:0");  // unquoted: ntp.org's ntpq parses it
  EXPECT_EQ(*variable("version", v), "\"stratad test\"");
  EXPECT_EQ(*variable("ss_received", v), "1000");
  EXPECT_EQ(*variable("ss_received_r", v), "1000");
  EXPECT_EQ(*variable("ss_uptime", v), "3725");
  EXPECT_EQ(*variable("ss_numctlreq", v), "4");
  EXPECT_EQ(variable("clock", v)->substr(0, 2), "0x");
  SystemView u = v;
  u.time.synchronised = false;
  EXPECT_EQ(*variable("leap", u), "3");
  EXPECT_EQ(*variable("stratum", u), "16");
  EXPECT_EQ(split_names(" a, b,,c ,"), (std::vector<std::string_view>{"a", "b", "c"}));
}

std::vector<MruEntry> entries(size_t n) {
  std::vector<MruEntry> out;
  for (size_t i = 0; i < n; ++i) {
    MruEntry e;
    e.address = base::IpAddress::v4(0x0a000000u + static_cast<uint32_t>(i));
    e.first = (uint64_t{3'900'000'000} + i) << 32;
    e.last = e.first + (uint64_t{i % 7} << 32);
    e.count = static_cast<uint32_t>(1 + i % 5);
    e.mode_version = 4 << 3 | 3;
    e.restrict = i % 10 == 0 ? kResLimited : 0;
    out.push_back(e);
  }
  return out;
}

// Parses a response's name=value text into a map (the way both ntpqs split it).
std::map<std::string, std::string> items(const std::string& text) {
  std::map<std::string, std::string> m;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string item = text.substr(i, j - i);
    std::erase_if(item, [](char c) { return c == ' ' || c == '\r' || c == '\n'; });
    const size_t eq = item.find('=');
    if (eq != std::string::npos) m[item.substr(0, eq)] = item.substr(eq + 1);
    i = j + 1;
  }
  return m;
}

TEST(Mode6Mru, WalkWithResumePointsSeesEveryEntryOnceOldestFirst) {
  MruSnapshot snap;
  const uint64_t now = uint64_t{3'900'002'000} << 32;
  snap.build(entries(1000), {}, now, 100000);
  ASSERT_EQ(snap.entries().size(), 1000u);
  for (size_t i = 1; i < 1000; ++i) EXPECT_LE(snap.entries()[i - 1].last, snap.entries()[i].last);

  std::vector<std::string> seen;
  MruQuery q;
  int requests = 0;
  for (;;) {
    ASSERT_LT(++requests, 200);
    const MruResponse r = write_mru_response(snap, q, "0123456789abcdef01234567", now, 2 * kMaxData);
    ASSERT_EQ(r.kind, MruResponse::Kind::kData);
    const auto m = items(r.data);
    EXPECT_EQ(m.at("nonce"), "0123456789abcdef01234567");
    if (!q.resume.empty()) {
      EXPECT_TRUE(m.count("addr.older") && m.count("last.older"));
    }
    EXPECT_LE(r.data.size(), 2 * kMaxData);
    std::string newest_last;
    for (size_t k = 0; k < r.rows; ++k) {
      const std::string n = std::to_string(k);
      for (const char* tag : {"addr.", "last.", "first.", "ct.", "mv.", "rs."})
        ASSERT_TRUE(m.count(tag + n)) << tag << n;  // every entry complete (ntp.org's ntpq)
      seen.push_back(m.at("addr." + n));
      newest_last = m.at("last." + n);
    }
    if (r.complete) {
      EXPECT_TRUE(m.count("now"));
      if (r.rows > 0) {
        EXPECT_EQ(m.at("last.newest"), newest_last);
      }
      break;
    }
    // Resume from the newest entry received, as ntpq does.
    q.resume = {{base::Endpoint::parse(m.at("addr." + std::to_string(r.rows - 1)), 0)->address,
                 std::stoull(newest_last.substr(2, 8), nullptr, 16) << 32 |
                     std::stoull(newest_last.substr(11, 8), nullptr, 16)}};
  }
  ASSERT_EQ(seen.size(), 1000u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 1000u);
  EXPECT_GT(requests, 10);

  // A resume point that is not in the snapshot: ntpq must restart.
  q.resume = {{base::IpAddress::v4(0x01020304), 42}};
  EXPECT_EQ(write_mru_response(snap, q, "n", now, kMaxData).kind, MruResponse::Kind::kUnknownVariable);
  // The row limit.
  q.resume.clear();
  q.limit = 3;
  EXPECT_EQ(write_mru_response(snap, q, "n", now, 32 * kMaxData).rows, 3u);
}

TEST(Mode6Mru, FiltersAndQueryParsing) {
  const auto q = parse_mru_query(
      "nonce=abc, frags=32, mincount=3, resany=0x20, laddr=127.0.0.1, maxlstint=100, "
      "addr.0=10.0.0.5:123, last.0=0xe8d4a51e.00000000, addr.1=[2001:db8::1]:0, "
      "last.1=0x00000001.00000002, sort=-count");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->nonce, "abc");
  EXPECT_EQ(*q->frags, 32u);
  EXPECT_EQ(q->filter.mincount, 3u);
  EXPECT_EQ(q->filter.resany, 0x20);
  EXPECT_EQ(q->filter.laddr->to_string(), "127.0.0.1");
  ASSERT_EQ(q->resume.size(), 2u);
  EXPECT_EQ(q->resume[0].address.to_string(), "10.0.0.5");
  EXPECT_EQ(q->resume[1].last, (uint64_t{1} << 32) | 2);
  // No stricter than ntpd: what does not parse is left at its default (sscanf's way), a
  // resume point needs addr.N and last.N from 0 on, unknown names are skipped.
  auto lenient = parse_mru_query("nonce=a, frags=x, mincount=many, bare");
  ASSERT_TRUE(lenient);
  EXPECT_FALSE(lenient->frags);
  EXPECT_EQ(lenient->filter.mincount, 0u);
  lenient = parse_mru_query("nonce=a, addr.0=10.0.0.1:1");  // no matching last.0
  ASSERT_TRUE(lenient);
  EXPECT_TRUE(lenient->resume.empty());
  lenient = parse_mru_query("nonce=a, addr.0=10.0.0.1:1, last.0=0x1.2, last.1=0x1.3, last.99=0x1.2");
  ASSERT_TRUE(lenient);
  EXPECT_EQ(lenient->resume.size(), 1u);

  MruSnapshot snap;
  const uint64_t now = uint64_t{3'900'000'200} << 32;
  MruFilter f;
  f.mincount = 3;  // count = 1 + i % 5
  snap.build(entries(100), f, now, 100000);
  for (const auto& e : snap.entries()) EXPECT_GE(e.count, 3u);
  EXPECT_EQ(snap.entries().size(), 60u);
  f = {};
  f.resany = kResLimited;  // every tenth
  snap.build(entries(100), f, now, 100000);
  EXPECT_EQ(snap.entries().size(), 10u);
  f = {};
  f.maxlstint = 105;  // last = 3,900,000,000 + i + i % 7: seen within 105 s of now
  snap.build(entries(100), f, now, 100000);
  for (const auto& e : snap.entries()) EXPECT_GE(e.last, now - (uint64_t{105} << 32));
  EXPECT_LT(snap.entries().size(), 100u);
  snap.build(entries(100), {}, now, 10);  // the newest 10 only
  EXPECT_EQ(snap.entries().size(), 10u);
  EXPECT_EQ(snap.entries().back().address.to_string(), "10.0.0.97");  // 97 + 97 % 7 = 103
}

TEST(Mode6Mru, NoncesAreBoundToAddressPortAndTime) {
  NonceKeeper k;
  const base::NtpTimestamp t{uint64_t{3'900'000'000} << 32};
  const base::Endpoint peer{base::IpAddress::v4(0x7f000001), 40000};
  const std::string n = k.make(t, peer);
  ASSERT_EQ(n.size(), 24u);
  EXPECT_TRUE(k.valid(n, t, peer));
  EXPECT_TRUE(k.valid(n, base::NtpTimestamp{t.raw + (uint64_t{15} << 32)}, peer));
  EXPECT_FALSE(k.valid(n, base::NtpTimestamp{t.raw + (uint64_t{16} << 32)}, peer));  // stale
  EXPECT_FALSE(k.valid(n, t, {peer.address, 40001}));                              // other port
  EXPECT_FALSE(k.valid(n, t, {base::IpAddress::v4(0x7f000002), 40000}));           // other host
  std::string forged = n;
  forged[23] = forged[23] == '0' ? '1' : '0';
  EXPECT_FALSE(k.valid(forged, t, peer));
  EXPECT_FALSE(k.valid("nonce", t, peer));
}

class FakeSources : public Sources {
 public:
  int oldest_scans = 0;  // calls of the (expensive, in stratad) oldest-record scan
  SystemView system() override {
    SystemView v = sample_view();
    v.mru_oldest_age_s = [this] {
      ++oldest_scans;
      return 42.0;
    };
    return v;
  }
  int scans = 0;  // client-table scans (snapshot builds)
  void client_entries(std::vector<MruEntry>& out) override {
    ++scans;
    const auto e = entries(50);
    out.insert(out.end(), e.begin(), e.end());
  }
};

struct ResponderSetup {
  FakeSources sources;
  stats::WorkerCounters counters;
  ResponderOptions options = [] {
    ResponderOptions o;
    o.burst = 20;
    o.rate = 1;
    o.mrulist = MrulistAccess::kQuery;  // the mrulist tests read from loopback
    return o;
  }();
  Responder responder{options, sources, counters};
  policy::Policy policy = [] {
    std::vector<policy::RuleError> errors;
    const auto parsed = policy::parse_rules_text("192.0.2.0/24 query\n198.51.100.0/24 ignore\n", "t");
    return policy::Policy::compile(parsed.rules, {true}, errors);
  }();
  auth::KeyRing keys{std::vector<auth::Key>{md5_key(1, "control"), md5_key(2, "other")}};
  Access access{policy, keys, 1};
  int64_t now_ns = int64_t{1'800'000'000} * 1'000'000'000;

  std::vector<std::vector<uint8_t>> ask(const std::vector<uint8_t>& req, const char* from) {
    now_ns += 1'000'000;
    return responder.handle({req, {*base::IpAddress::parse(from), 40000}, {}, now_ns}, access);
  }
};

TEST(Mode6Responder, LoopbackReadsVariablesAndUnknownNamesFailWhole) {
  ResponderSetup s;
  auto out = s.ask(request(kReadVariables, "stratum,leap"), "127.0.0.1");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(payload(out), "stratum=2, leap=0\r\n");
  EXPECT_EQ(base::load_be16(&out[0][4]), system_status(sample_view()));
  out = s.ask(request(kReadVariables, "stratum,bogus"), "::1");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0][1], 0xc0 | kReadVariables);
  EXPECT_EQ(out[0][4], kErrUnknownVariable);
  out = s.ask(request(kReadVariables), "127.0.0.1");  // rv: the default list
  EXPECT_NE(payload(out).find("version=\"stratad test\""), std::string::npos);
  EXPECT_EQ(s.ask(request(kReadStatus), "127.0.0.1").size(), 1u);
  out = s.ask(request(kWriteVariables, "leap=1"), "127.0.0.1");
  EXPECT_EQ(out[0][4], kErrPermission);
  out = s.ask(request(30), "127.0.0.1");
  EXPECT_EQ(out[0][4], kErrBadOpcode);
  auto bad = request(kReadVariables, "stratum");
  bad[11] = 100;
  out = s.ask(bad, "127.0.0.1");
  EXPECT_EQ(out[0][4], kErrBadFormat);
  EXPECT_EQ(s.counters.get(stats::Counter::control_requests), 7u);
  EXPECT_EQ(s.counters.get(stats::Counter::control_errors), 4u);
}

TEST(Mode6Responder, WhoMayAskAndHowMuchComesBack) {
  ResponderSetup s;
  // No rule lets 203.0.113.9 query, 198.51.100.0/24 is ignored: nothing at all.
  EXPECT_TRUE(s.ask(request(kReadVariables), "203.0.113.9").empty());
  EXPECT_TRUE(s.ask(request(kReadVariables), "198.51.100.1").empty());
  EXPECT_EQ(s.counters.get(stats::Counter::drop_mode_control), 2u);
  // A query rule off loopback, unauthenticated: only what fits in the request (an error).
  const auto req = request(kReadVariables);
  auto out = s.ask(req, "192.0.2.7");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_LE(out[0].size(), req.size());
  EXPECT_EQ(out[0][4], kErrPermission);
  // The control key opens everything from anywhere, and the answer is signed.
  out = s.ask(sign(request(kReadVariables, "stratum"), md5_key(1, "control")), "203.0.113.9");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(base::load_be16(&out[0][10]), std::string_view("stratum=2\r\n").size());
  const size_t at = (kHeaderSize + 11 + 7) / 8 * 8;
  ASSERT_EQ(out[0].size(), at + 20);
  EXPECT_TRUE(auth::verify(md5_key(1, "control"), {out[0].data(), at}, {out[0].data() + at, 20}));
  // Another trusted key is not the control key: not from outside the query rules.
  EXPECT_TRUE(s.ask(sign(request(kReadVariables), md5_key(2, "other")), "203.0.113.9").empty());
  // A wrong digest: nothing, even from loopback.
  EXPECT_TRUE(s.ask(sign(request(kReadVariables), md5_key(1, "wrong")), "127.0.0.1").empty());
  EXPECT_EQ(s.counters.get(stats::Counter::drop_control_bad), 1u);
}

TEST(Mode6Responder, PerSourceRateLimit) {
  ResponderSetup s;
  size_t answered = 0;
  for (int i = 0; i < 40; ++i) answered += s.ask(request(kReadStatus), "127.0.0.1").size();
  EXPECT_EQ(answered, 20u);  // the burst; 40 ms at 1/s refills nothing
  EXPECT_EQ(s.counters.get(stats::Counter::drop_control_limited), 20u);
  EXPECT_EQ(s.ask(request(kReadStatus), "127.0.0.2").size(), 1u);  // another source
  s.now_ns += 2'000'000'000;
  EXPECT_EQ(s.ask(request(kReadStatus), "127.0.0.1").size(), 1u);  // refilled
}

TEST(Mode6Responder, MrulistNeedsAFreshNonce) {
  ResponderSetup s;
  auto out = s.ask(request(kRequestNonce), "127.0.0.1");
  ASSERT_EQ(out.size(), 1u);
  const std::string text = payload(out);
  ASSERT_EQ(text.rfind("nonce=", 0), 0u);
  const std::string nonce = text.substr(6, 24);
  out = s.ask(request(kReadMru, "nonce=" + nonce + ", frags=32"), "127.0.0.1");
  ASSERT_FALSE(out.empty());
  const auto m = items(payload(out));
  EXPECT_TRUE(m.count("now"));
  EXPECT_TRUE(m.count("addr.49"));
  // Another source port replaying the nonce, or a made-up one: no answer at all.
  EXPECT_TRUE(s.responder
                  .handle({request(kReadMru, "nonce=" + nonce), {base::IpAddress::v4(0x7f000001), 40001},
                           {}, s.now_ns},
                          s.access)
                  .empty());
  EXPECT_TRUE(s.ask(request(kReadMru, "nonce=000000000000000000000000"), "127.0.0.1").empty());
  out = s.ask(request(kReadMru, "nonce=" + nonce + ", frags=200"), "127.0.0.1");
  EXPECT_EQ(out[0][4], kErrBadValue);
}

// ntpd's read_mru_list: limit is checked against 1..256 only when frags is absent, so the
// `limit=1000, frags=32` that ntpq sends after raising its limit is served (it looped on
// CERR_BADVALUE before).
TEST(Mode6Responder, MrulistLimitIsCheckedOnlyWithoutFrags) {
  ResponderSetup s;
  auto nonce = [&] { return payload(s.ask(request(kRequestNonce), "127.0.0.1")).substr(6, 24); };
  auto rows = [&](const std::string& params) -> int {
    s.now_ns += 3'000'000'000;  // refill the per-source token bucket
    const auto out = s.ask(request(kReadMru, "nonce=" + nonce() + ", " + params), "127.0.0.1");
    if (out.empty()) return -2;
    if (out[0][1] & 0x40) return out[0][4] == kErrBadValue ? -1 : -3;
    const auto m = items(payload(out));
    int n = 0;
    while (m.count("addr." + std::to_string(n))) ++n;
    return n;
  };
  EXPECT_EQ(rows("frags=32, limit=1000"), 50);  // above the number of clients (50)
  EXPECT_EQ(rows("frags=32, limit=10"), 10);    // below it
  EXPECT_EQ(rows("frags=32"), 50);
  EXPECT_EQ(rows("limit=10"), 10);
  EXPECT_EQ(rows("limit=256"), 50);
  EXPECT_EQ(rows("limit=1000"), -1);  // no frags: 1..256 only
  EXPECT_EQ(rows("limit=0"), -1);
  EXPECT_EQ(rows("frags=0, limit=0"), -1);
  EXPECT_EQ(rows("frags=129"), -1);
  EXPECT_EQ(rows("frags=128, limit=0"), 50);  // limit 0 with frags: no row limit
}

// Found by the security review (issue 12, findings 1, 3 and 8).
TEST(Mode6Responder, SignedRepliesAreNotAmplifiedTowardForgedSources) {
  ResponderSetup s;
  // The monitoring host's signed rv, answered in full: far longer than the request.
  const auto rv = sign(request(kReadVariables), md5_key(1, "control"));
  auto out = s.ask(rv, "203.0.113.9");
  ASSERT_FALSE(out.empty());
  EXPECT_GT(out[0].size(), 5 * rv.size());
  EXPECT_FALSE(s.ask(rv, "203.0.113.9").empty());  // again from the same host: its own answer
  // The same packet replayed from forged sources: nothing (its MAC does not cover them).
  const uint64_t bad_before = s.counters.get(stats::Counter::drop_control_bad);
  for (const char* forged : {"203.0.113.10", "192.0.2.5", "198.18.0.1"})
    EXPECT_TRUE(s.ask(rv, forged).empty()) << forged;
  EXPECT_EQ(s.counters.get(stats::Counter::drop_control_bad), bad_before + 3);
  // A time-client key does not authorise mode 6 (unless [mode6] time_keys): from a query
  // prefix its signed request gets no more than its own size.
  const auto other = sign(request(kReadVariables), md5_key(2, "other"));
  out = s.ask(other, "192.0.2.9");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_LE(out[0].size(), other.size());
  EXPECT_EQ(out[0][4], kErrPermission);
}

TEST(Mode6Responder, TimeKeysAuthoriseOnlyWhenConfigured) {
  ResponderSetup s;
  s.options.time_keys = true;
  Responder r{s.options, s.sources, s.counters};
  const auto other = sign(request(kReadVariables), md5_key(2, "other"));
  const auto out = r.handle({other, {*base::IpAddress::parse("203.0.113.9"), 40000}, {}, s.now_ns}, s.access);
  ASSERT_FALSE(out.empty());
  EXPECT_GT(out[0].size(), other.size());
}

TEST(Mode6Responder, AnUnauthorisedRequestCostsNoMoreThanItsAnswer) {
  ResponderSetup s;
  // 31 times the table-scanning name in one packet: scanned once, and not at all for a
  // source whose answer cannot be sent (the budget is known before the names are looked up).
  std::string names;
  for (int i = 0; i < 31; ++i) names += (names.empty() ? "" : ",") + std::string("mru_oldest_age");
  s.sources.oldest_scans = 0;
  auto out = s.ask(request(kReadVariables, names), "127.0.0.1");
  ASSERT_EQ(out.size(), 2u);  // 31 values: two fragments
  EXPECT_EQ(s.sources.oldest_scans, 1);
  s.sources.oldest_scans = 0;
  out = s.ask(request(kReadVariables, "version,version,version,mru_oldest_age"), "192.0.2.7");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0][4], kErrPermission);
  EXPECT_EQ(s.sources.oldest_scans, 0);
}

TEST(Mode6Responder, MrulistIsPrivateByDefault) {
  ResponderSetup s;
  s.options.mrulist = MrulistAccess::kControlKey;
  Responder r{s.options, s.sources, s.counters};
  auto ask = [&](const std::vector<uint8_t>& req) {
    s.now_ns += 1'000'000;
    return r.handle({req, {base::IpAddress::v4(0x7f000001), 40000}, {}, s.now_ns}, s.access);
  };
  const std::string nonce = payload(ask(request(kRequestNonce))).substr(6, 24);
  // From loopback, unsigned: refused (any local user could read every client's address).
  auto out = ask(request(kReadMru, "nonce=" + nonce + ", frags=32"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0][4], kErrPermission);
  // With the control key: the walk.
  out = ask(sign(request(kReadMru, "nonce=" + nonce + ", frags=32"), md5_key(1, "control")));
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(items(payload(out)).count("addr.0"));
}

// Found by the security review (issue 12, finding 5): a walk start copied every record, and
// alternating filters forced a rebuild each time.
TEST(Mode6Mru, StreamedBuildKeepsOnlyTheNewest) {
  const auto all = entries(1000);
  MruSnapshot copied, streamed;
  MruFilter f;
  f.mincount = 2;
  const uint64_t now = uint64_t{3'900'001'000} << 32;
  copied.build(all, f, now, 100);
  streamed.build([&](const std::function<void(const MruEntry&)>& visit) { for (const auto& e : all) visit(e); },
                 f, now, 100);
  ASSERT_EQ(streamed.entries().size(), 100u);
  ASSERT_EQ(copied.entries().size(), streamed.entries().size());
  for (size_t i = 0; i < copied.entries().size(); ++i) {
    EXPECT_EQ(copied.entries()[i].address, streamed.entries()[i].address);
    EXPECT_EQ(copied.entries()[i].last, streamed.entries()[i].last);
  }
}

TEST(Mode6Responder, SnapshotBuildsAreSharedAndBounded) {
  ResponderSetup s;
  s.options.burst = 1000;  // the per-source bucket out of the way: only builds are limited
  Responder r{s.options, s.sources, s.counters};
  auto ask = [&](const std::vector<uint8_t>& req) {
    s.now_ns += 1'000'000;
    return r.handle({req, {base::IpAddress::v4(0x7f000001), 40000}, {}, s.now_ns}, s.access);
  };
  auto walk = [&](const std::string& filter) {
    s.now_ns += 50'000'000;  // 50 ms between requests
    const std::string nonce = payload(ask(request(kRequestNonce))).substr(6, 24);
    return ask(request(kReadMru, "nonce=" + nonce + ", frags=32" + filter));
  };
  s.sources.scans = 0;
  EXPECT_FALSE(walk("").empty());
  EXPECT_FALSE(walk("").empty());  // within a second, the same filters: shared
  EXPECT_EQ(s.sources.scans, 1);
  // Alternating filters: a build each, but no more than the budget (4 at once, 2/s).
  int answered = 0;
  for (int i = 0; i < 8; ++i) answered += !walk(i % 2 ? ", mincount=2" : ", mincount=3").empty();
  EXPECT_LE(s.sources.scans, 1 + 4 + 1);
  EXPECT_LT(answered, 8);
  EXPECT_GT(s.counters.get(stats::Counter::drop_control_limited), 0u);
}

}  // namespace
}  // namespace strata::mode6
