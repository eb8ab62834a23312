// Unit tests of the per-packet decision with an injected time state: what is answered, how,
// and which counter every drop lands in.
#include "server/decide.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "base/bytes.h"

namespace strata::server {
namespace {

using wire::Leap;
using wire::Mode;

std::vector<uint8_t> request(uint8_t version, uint8_t mode, size_t length = 48) {
  std::vector<uint8_t> p(length, 0);
  if (!p.empty()) p[0] = static_cast<uint8_t>(version << 3 | mode);
  if (length >= 48) {
    p[2] = 6;
    base::store_be64(&p[40], 0xDEADBEEFCAFEF00DULL);
  }
  return p;
}

BatchContext synced_context() {
  clock::TimeState s;
  s.synchronised = true;
  s.leap = Leap::kNone;
  s.stratum = 2;
  s.precision = -24;
  s.reference_id = 0xC0000201;
  s.root_delay = 0.001;
  s.root_dispersion = 0.002;
  s.as_of = base::RealTime{base::Nanos{0}};
  return make_context(s, s.as_of, clock::UnsyncAction::kReply);
}

struct Outcome {
  Decision d;
  std::vector<uint8_t> out = std::vector<uint8_t>(128, 0xEE);
};

Outcome run(const std::vector<uint8_t>& req, const BatchContext& ctx = synced_context(),
        uint16_t port = 40000, bool truncated = false) {
  Outcome r;
  r.d = decide(req, truncated, port, base::NtpTimestamp{0x0123456789ABCDEFULL}, ctx, r.out);
  return r;
}

TEST(Decide, ClientRequestGetsServerReply) {
  const Outcome r = run(request(4, 3));
  ASSERT_TRUE(r.d.reply);
  EXPECT_EQ(r.d.length, 48);
  EXPECT_TRUE(r.d.stamp_transmit);
  EXPECT_EQ(r.d.version, VersionClass::kCurrent);
  const wire::Header h = wire::decode_header(r.out);
  EXPECT_EQ(h.mode, Mode::kServer);
  EXPECT_EQ(h.version, 4);
  EXPECT_EQ(h.leap, Leap::kNone);
  EXPECT_EQ(h.stratum, 2);
  EXPECT_EQ(h.poll, 6);
  EXPECT_EQ(h.precision, -24);
  EXPECT_EQ(h.reference_id, 0xC0000201u);
  EXPECT_NEAR(h.root_delay.to_seconds(), 0.001, 1e-4);
  EXPECT_NEAR(h.root_dispersion.to_seconds(), 0.002, 1e-4);
  EXPECT_EQ(h.origin.raw, 0xDEADBEEFCAFEF00DULL);
  EXPECT_EQ(h.receive.raw, 0x0123456789ABCDEFULL);
}

TEST(Decide, EveryVersionAnsweredWithItsOwn) {
  for (uint8_t v = 1; v <= 4; ++v) {
    const Outcome r = run(request(v, 3));
    ASSERT_TRUE(r.d.reply) << int(v);
    EXPECT_EQ(wire::decode_header(r.out).version, v);
    EXPECT_EQ(r.d.version, v == 4 ? VersionClass::kCurrent : VersionClass::kOlder);
  }
}

TEST(Decide, V1Mode0AndSymmetricActive) {
  Outcome r = run(request(1, 0));
  ASSERT_TRUE(r.d.reply);
  EXPECT_TRUE(r.d.v1_mode0);
  EXPECT_EQ(wire::decode_header(r.out).mode, Mode::kServer);
  r = run(request(4, 1));
  ASSERT_TRUE(r.d.reply);
  EXPECT_TRUE(r.d.symmetric);
  EXPECT_EQ(wire::decode_header(r.out).mode, Mode::kSymmetricPassive);
}

struct DropCase {
  std::vector<uint8_t> bytes;
  DropReason reason;
  stats::Counter bucket;
  VersionClass version;
};

TEST(Decide, DropsLandInNtpdBuckets) {
  using stats::Counter;
  std::vector<uint8_t> mac = request(4, 3, 68);
  std::vector<uint8_t> nak = request(4, 3, 52);
  std::vector<uint8_t> nts = request(4, 3);
  nts.resize(48 + 40 + 40, 0);
  base::store_be16(&nts[48], 0x0104);
  base::store_be16(&nts[50], 40);
  base::store_be16(&nts[88], 0x0404);
  base::store_be16(&nts[90], 40);
  const std::vector<DropCase> cases = {
      {{}, DropReason::kTooShort, Counter::bad_format, VersionClass::kNotCounted},
      {request(4, 3, 47), DropReason::kTooShort, Counter::bad_format, VersionClass::kCurrent},
      {request(0, 3), DropReason::kBadVersion, Counter::bad_format, VersionClass::kNotCounted},
      {request(5, 3), DropReason::kBadVersion, Counter::bad_format, VersionClass::kNotCounted},
      {request(2, 0), DropReason::kBadMode0, Counter::bad_format, VersionClass::kNotCounted},
      {request(4, 2), DropReason::kModeSymmetricPassive, Counter::bad_format, VersionClass::kNotCounted},
      {request(4, 5), DropReason::kModeBroadcast, Counter::bad_format, VersionClass::kNotCounted},
      {request(2, 7), DropReason::kModePrivate, Counter::bad_format, VersionClass::kNotCounted},
      {request(2, 6, 12), DropReason::kModeControl, Counter::restricted, VersionClass::kNotCounted},
      {request(4, 4), DropReason::kModeServer, Counter::declined, VersionClass::kCurrent},
      {request(4, 3, 50), DropReason::kBadTrailer, Counter::bad_format, VersionClass::kCurrent},
      {mac, DropReason::kMac, Counter::auth_failed, VersionClass::kCurrent},
      {nak, DropReason::kCryptoNak, Counter::auth_failed, VersionClass::kCurrent},
      {request(3, 3, 120), DropReason::kMsSntp, Counter::declined, VersionClass::kOlder},
      {nts, DropReason::kNts, Counter::declined, VersionClass::kCurrent},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "reason " << int(c.reason));
    const Outcome r = run(c.bytes);
    EXPECT_FALSE(r.d.reply);
    EXPECT_EQ(r.d.reason, c.reason);
    EXPECT_EQ(ntpd_bucket(c.reason), c.bucket);
    EXPECT_EQ(r.d.version, c.version);
  }
}

TEST(Decide, SourcePortZeroAndTruncated) {
  EXPECT_EQ(run(request(4, 3), synced_context(), 0).d.reason, DropReason::kSourcePort0);
  EXPECT_EQ(run(request(4, 3), synced_context(), 123, true).d.reason, DropReason::kTruncated);
}

TEST(Decide, UnsynchronisedRepliesOrDrops) {
  clock::TimeState s;
  s.synchronised = false;
  s.stratum = 2;
  BatchContext reply = make_context(s, s.as_of, clock::UnsyncAction::kReply);
  Outcome r = run(request(4, 3), reply);
  ASSERT_TRUE(r.d.reply);
  EXPECT_TRUE(r.d.unsynchronised);
  const wire::Header h = wire::decode_header(r.out);
  EXPECT_EQ(h.leap, Leap::kUnsynchronised);
  EXPECT_EQ(h.stratum, 16);
  BatchContext drop = make_context(s, s.as_of, clock::UnsyncAction::kDrop);
  r = run(request(4, 3), drop);
  EXPECT_FALSE(r.d.reply);
  EXPECT_EQ(r.d.reason, DropReason::kUnsynchronised);
}

TEST(Decide, NeverAnswersLongerThanTheRequest) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> bytes(rng() % 200);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    if (!bytes.empty() && i % 2 == 0) bytes[0] = static_cast<uint8_t>((rng() % 4 + 1) << 3 | 3);
    const Outcome r = run(bytes);
    if (r.d.reply) {
      EXPECT_LE(r.d.length, bytes.size());
    }
  }
}

// A small tracker with a deterministic limiter (no leak), and rules holding its limits.
struct TrackedSetup {
  clients::TrackerOptions options = [] {
    clients::TrackerOptions o;
    o.table.capacity = 64;
    o.table.mindepth = 0;
    o.prefix_capacity = 64;
    o.limits.leak = 0;
    return o;
  }();
  clients::Tracker tracker{options};
  Rules rules = [this] {
    Rules r;
    r.limits = options.limits;
    return r;
  }();
};

TEST(Decide, RateLimitedRequestsGetKodOrDrop) {
  TrackedSetup setup;
  clients::Tracker& tracker = setup.tracker;
  const Rules& rules = setup.rules;
  const auto peer = *base::IpAddress::parse("198.51.100.1");
  const auto local = *base::IpAddress::parse("192.0.2.1");
  stats::WorkerCounters c;
  std::vector<Decision> d;
  for (int i = 0; i < 5; ++i) {
    const Tracking t{tracker, rules, peer, local, int64_t{1'000'000'000} * 100 + i * 50'000'000};
    std::vector<uint8_t> out(128, 0xEE);
    d.push_back(decide(request(4, 3), false, 40000, base::NtpTimestamp{1}, synced_context(), out, &t));
    count(d.back(), c);
    if (i == 1) {
      // The KoD: ntpd's layout, the request's length, stratum 0, RATE, poll >= log2(interval).
      ASSERT_TRUE(d.back().reply);
      EXPECT_TRUE(d.back().kod);
      EXPECT_FALSE(d.back().stamp_transmit);
      EXPECT_EQ(d.back().length, 48);
      const wire::Header h = wire::decode_header(out);
      EXPECT_EQ(h.stratum, 0);
      EXPECT_EQ(h.leap, Leap::kUnsynchronised);
      EXPECT_EQ(h.reference_id, wire::kKissRate);
      EXPECT_EQ(h.poll, 6);  // the request's 6 is above log2(8 s)
      EXPECT_EQ(h.transmit.raw, 0xDEADBEEFCAFEF00DULL);  // no server time revealed
    }
  }
  EXPECT_TRUE(d[0].reply && !d[0].kod && d[0].new_client);
  for (int i = 2; i < 5; ++i) {
    EXPECT_FALSE(d[static_cast<size_t>(i)].reply);
    EXPECT_EQ(d[static_cast<size_t>(i)].reason, DropReason::kRateLimited);
  }
  EXPECT_EQ(c.get(stats::Counter::received), 5u);
  EXPECT_EQ(c.get(stats::Counter::processed), 1u);
  EXPECT_EQ(c.get(stats::Counter::kod_sent), 1u);
  EXPECT_EQ(c.get(stats::Counter::rate_limited), 4u);  // KoD'd and dropped, as ntpd counts
  EXPECT_EQ(c.get(stats::Counter::drop_rate_limited), 3u);
  EXPECT_EQ(c.get(stats::Counter::clients_new), 1u);
  EXPECT_EQ(c.get(stats::Counter::bad_format), 0u);
  EXPECT_EQ(c.get(stats::Counter::requests_v4), 5u);
  EXPECT_EQ(c.get(stats::Counter::requests_mode3), 5u);
  EXPECT_EQ(d[0].gap_ns, -1);             // a new client has no previous request
  EXPECT_EQ(d[3].gap_ns, 50'000'000);     // 50 ms after its previous one
  // Malformed packets never reach the client table.
  const Tracking t{tracker, rules, *base::IpAddress::parse("203.0.113.5"), local, 0};
  std::vector<uint8_t> out(128);
  decide(request(4, 3, 20), false, 40000, base::NtpTimestamp{1}, synced_context(), out, &t);
  EXPECT_EQ(tracker.table().size(), 1u);
}

// A request with a MAC of `key` (or key id `id` and a wrong digest when `corrupt`).
std::vector<uint8_t> signed_request(const auth::Key& key, bool corrupt = false) {
  std::vector<uint8_t> p = request(4, 3);
  p.resize(48 + auth::kMaxMac);
  p.resize(48 + auth::sign(key, {p.data(), 48}, {p.data() + 48, auth::kMaxMac}));
  if (corrupt) p.back() ^= 1;
  return p;
}

TEST(Decide, AuthenticatedRequestsGetSignedReplies) {
  TrackedSetup setup;
  auto parsed = auth::parse_keys_text("1 MD5 sesame\n2 SHA1 HEX:00112233445566778899aabbccddeeff00112233\n"
                                      "3 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c\n4 MD5 untrusted\n", "k");
  ASSERT_TRUE(parsed.errors.empty());
  parsed.keys[3].trusted = false;
  setup.rules.keys = auth::KeyRing(parsed.keys);
  setup.rules.limits.enabled = false;
  const auto local = *base::IpAddress::parse("192.0.2.1");
  stats::WorkerCounters c;
  int64_t now = int64_t{1'000'000'000} * 100;
  auto ask = [&](const std::vector<uint8_t>& req, std::vector<uint8_t>& out) {
    const Tracking t{setup.tracker, setup.rules, *base::IpAddress::parse("198.51.100.7"), local, now += 1'000'000'000};
    const Decision d = decide(req, false, 40000, base::NtpTimestamp{1}, synced_context(), out, &t);
    count(d, c);
    return d;
  };
  for (size_t k = 0; k < 3; ++k) {
    const auth::Key& key = parsed.keys[k];
    const auto req = signed_request(key);
    std::vector<uint8_t> out(128, 0xEE);
    const Decision d = ask(req, out);
    ASSERT_TRUE(d.reply) << k;
    EXPECT_EQ(d.key, setup.rules.keys.find(key.id));
    EXPECT_EQ(d.length, req.size());  // the same MAC length: no amplification
    finish_reply({out.data(), d.length}, base::NtpTimestamp{0x1122334455667788ULL}, d.key);
    EXPECT_EQ(auth::key_id_of({out.data() + 48, 4}), key.id);
    EXPECT_TRUE(auth::verify(key, {out.data(), 48}, {out.data() + 48, d.length - 48u}));
    EXPECT_EQ(wire::decode_header(out).transmit.raw, 0x1122334455667788ULL);
  }
  std::vector<uint8_t> out(128, 0xEE);
  Decision d = ask(signed_request(parsed.keys[0], true), out);
  EXPECT_FALSE(d.reply);
  EXPECT_EQ(d.reason, DropReason::kBadMac);
  d = ask(signed_request(parsed.keys[3]), out);  // untrusted
  EXPECT_EQ(d.reason, DropReason::kMac);
  auth::Key unknown = parsed.keys[0];
  unknown.id = 99;
  d = ask(signed_request(unknown), out);
  EXPECT_EQ(d.reason, DropReason::kMac);
  EXPECT_EQ(c.get(stats::Counter::authenticated_replies), 3u);
  EXPECT_EQ(c.get(stats::Counter::auth_failed), 3u);
  EXPECT_EQ(c.get(stats::Counter::drop_bad_mac), 1u);
  EXPECT_EQ(c.get(stats::Counter::drop_mac), 2u);

  // ntp.org's choice: the time with a crypto-NAK (4 zero octets), still no longer than asked.
  setup.rules.bad_mac = auth::BadMac::kCryptoNak;
  const auto bad = signed_request(parsed.keys[1], true);
  d = ask(bad, out);
  ASSERT_TRUE(d.reply);
  EXPECT_TRUE(d.crypto_nak);
  EXPECT_EQ(d.key, nullptr);
  EXPECT_EQ(d.length, 52);
  EXPECT_EQ(base::load_be32(&out[48]), 0u);
  EXPECT_EQ(c.get(stats::Counter::crypto_nak_sent), 1u);
  EXPECT_EQ(c.get(stats::Counter::auth_failed), 4u);

  // A rate-limited authenticated client gets a KoD signed with its key.
  setup.rules.limits.enabled = true;
  setup.rules.limits.min_spacing_s = 10;
  const Tracking t{setup.tracker, setup.rules, *base::IpAddress::parse("198.51.100.8"), local, now};
  const auto req = signed_request(parsed.keys[2]);
  decide(req, false, 40000, base::NtpTimestamp{1}, synced_context(), out, &t);
  d = decide(req, false, 40000, base::NtpTimestamp{1}, synced_context(), out, &t);
  ASSERT_TRUE(d.kod);
  EXPECT_EQ(d.length, req.size());
  EXPECT_TRUE(auth::verify(parsed.keys[2], {out.data(), 48}, {out.data() + 48, 20}));
}

TEST(Decide, AccessRulesIgnoreDenyAndNolimit) {
  TrackedSetup setup;
  clients::Tracker& tracker = setup.tracker;
  Rules& rules = setup.rules;
  const auto parsed = policy::parse_rules_text("192.0.2.0/24 ignore\n198.51.100.0/24 deny\n"
                                               "203.0.113.0/24 nolimit\n", "r");
  std::vector<policy::RuleError> errors;
  rules.policy = policy::Policy::compile(parsed.rules, {true}, errors);
  ASSERT_TRUE(errors.empty());
  const auto local = *base::IpAddress::parse("192.0.2.250");
  stats::WorkerCounters c;
  auto ask = [&](const char* from, int64_t at_ms) {
    const Tracking t{tracker, rules, *base::IpAddress::parse(from), local, at_ms * 1'000'000};
    std::vector<uint8_t> out(128, 0xEE);
    const Decision d = decide(request(4, 3), false, 40000, base::NtpTimestamp{1}, synced_context(), out, &t);
    count(d, c);
    return std::make_pair(d, wire::decode_header(out));
  };
  // ignore: dropped, never recorded.
  auto [ig, igh] = ask("192.0.2.9", 0);
  EXPECT_FALSE(ig.reply);
  EXPECT_EQ(ig.reason, DropReason::kIgnored);
  EXPECT_EQ(tracker.table().size(), 0u);
  // deny: a KoD DENY, then silence until kod_interval has passed.
  auto [dn, dnh] = ask("198.51.100.9", 1000);
  ASSERT_TRUE(dn.reply && dn.kod && dn.denied);
  EXPECT_EQ(dnh.reference_id, wire::kKissDeny);
  EXPECT_EQ(dnh.stratum, 0);
  EXPECT_EQ(ask("198.51.100.9", 2000).first.reason, DropReason::kDenied);
  EXPECT_TRUE(ask("198.51.100.9", 9500).first.kod);
  // nolimit: 10 requests 10 ms apart, all answered with the time.
  for (int i = 0; i < 10; ++i) {
    auto [nl, nlh] = ask("203.0.113.9", 20000 + i * 10);
    EXPECT_TRUE(nl.reply && !nl.kod);
  }
  // Anything else is limited: the second of two requests 10 ms apart is a KoD RATE.
  EXPECT_FALSE(ask("100.64.0.1", 30000).first.kod);
  auto [rl, rlh] = ask("100.64.0.1", 30010);
  EXPECT_TRUE(rl.kod);
  EXPECT_EQ(rlh.reference_id, wire::kKissRate);
  EXPECT_EQ(c.get(stats::Counter::restricted), 4u);  // ignore + 2 KoD DENY + 1 denied drop
  EXPECT_EQ(c.get(stats::Counter::drop_ignored), 1u);
  EXPECT_EQ(c.get(stats::Counter::drop_denied), 1u);
  EXPECT_EQ(c.get(stats::Counter::kod_deny_sent), 2u);
  EXPECT_EQ(c.get(stats::Counter::kod_sent), 3u);
  EXPECT_EQ(c.get(stats::Counter::rate_limited), 1u);
  EXPECT_EQ(c.get(stats::Counter::processed), 11u);
}

TEST(Decide, CountFillsTheRightCounters) {
  using stats::Counter;
  stats::WorkerCounters c;
  count(run(request(4, 3)).d, c);
  count(run(request(3, 3)).d, c);
  count(run(request(4, 4)).d, c);
  count(run(request(7, 3)).d, c);
  count(run(request(1, 0)).d, c);
  EXPECT_EQ(c.get(Counter::received), 5u);
  EXPECT_EQ(c.get(Counter::current_version), 2u);
  EXPECT_EQ(c.get(Counter::older_version), 2u);
  EXPECT_EQ(c.get(Counter::processed), 3u);
  EXPECT_EQ(c.get(Counter::declined), 1u);
  EXPECT_EQ(c.get(Counter::drop_mode_server), 1u);
  EXPECT_EQ(c.get(Counter::bad_format), 1u);
  EXPECT_EQ(c.get(Counter::drop_bad_version), 1u);
  EXPECT_EQ(c.get(Counter::served_v1_mode0), 1u);
}

}  // namespace
}  // namespace strata::server
