// decide() with NTS on: authenticated replies with fresh cookies, sealed after T3; NAKs;
// authenticated KoDs from the limiter; malformed NTS dropped before the client table; and the
// counters of each.
#include <gtest/gtest.h>

#include <vector>

#include "base/bytes.h"
#include "server/decide.h"

namespace strata::server {
namespace {

using stats::Counter;

BatchContext synced() {
  clock::TimeState s;
  s.synchronised = true;
  s.leap = wire::Leap::kNone;
  s.stratum = 2;
  s.precision = -24;
  s.as_of = base::RealTime{base::Nanos{0}};
  return make_context(s, s.as_of, clock::UnsyncAction::kReply);
}

struct NtsSetup {
  clients::TrackerOptions options = [] {
    clients::TrackerOptions o;
    o.table.capacity = 64;
    o.table.mindepth = 0;
    o.prefix_capacity = 64;
    o.limits.leak = 0;
    return o;
  }();
  clients::Tracker tracker{options};
  Rules rules;
  nts::PacketState state;  // the worker's
  nts::Siv seal;           // the worker's context for this reply slot
  // The client's side: keys from a KE, a cookie the server (another worker's jar) made.
  nts::CookieJar ke_jar;
  nts::Random random;
  nts::SessionKeys keys;
  nts::Siv c2s, s2c;
  std::array<uint8_t, 32> uid{};
  int64_t now_ns = int64_t{1'800'000'000} * 1'000'000'000;
  stats::WorkerCounters counters;

  NtsSetup() {
    rules.limits = options.limits;
    auto secrets = std::make_shared<nts::Secrets>();
    nts::Key k{};
    k.fill(0x33);
    secrets->secrets.push_back(nts::make_secret(k));
    secrets->generation = 4242;
    rules.nts_secrets = secrets;
    keys.c2s.fill(0xc2);
    keys.s2c.fill(0x52);
    c2s.set_key(keys.c2s);
    s2c.set_key(keys.s2c);
    random.fill(uid);
  }
  std::vector<uint8_t> request(unsigned placeholders = 0, int64_t cookie_ns = -1) {
    std::array<uint8_t, nts::kCookieSize> cookie{};
    ke_jar.seal(*rules.nts_secrets, rules.nts_keys, (cookie_ns < 0 ? now_ns : cookie_ns) / 1'000'000'000,
                keys, random, cookie);
    std::vector<uint8_t> p(2048, 0);
    p[0] = 0x23;
    p[2] = 6;
    base::store_be64(&p[40], 0xDEADBEEFCAFEF00DULL);
    p.resize(nts::append_client_fields(p, uid, cookie, placeholders, c2s, random));
    return p;
  }
  struct Result {
    Decision d;
    std::vector<uint8_t> out = std::vector<uint8_t>(2048, 0xEE);
  };
  Result run(const std::vector<uint8_t>& req, const char* from = "198.51.100.1",
             int64_t at_ns = 0) {
    Result r;
    const Tracking t{tracker, rules, *base::IpAddress::parse(from), *base::IpAddress::parse("192.0.2.1"),
                     at_ns == 0 ? now_ns : at_ns, false, &state, &seal};
    r.d = decide(req, false, 40000, base::NtpTimestamp{0x0123456789ABCDEFULL}, synced(), r.out, &t);
    count(r.d, counters);
    r.out.resize(r.d.length);
    return r;
  }
  nts::ReplyCheck check(const std::vector<uint8_t>& reply, size_t& received) {
    std::array<nts::ClientCookie, 8> got{};
    return nts::check_reply(reply, uid, s2c, got, received);
  }
};

TEST(DecideNts, AnswersWithTheTimeAndFreshCookiesSealedAfterT3) {
  NtsSetup s;
  for (unsigned placeholders : {0u, 2u, 7u}) {
    const auto req = s.request(placeholders);
    auto r = s.run(req, "198.51.100.1", s.now_ns + placeholders * 20'000'000'000LL);
    ASSERT_TRUE(r.d.reply);
    EXPECT_TRUE(r.d.nts && r.d.nts_authenticated && r.d.nts_seal_pending && r.d.stamp_transmit);
    EXPECT_FALSE(r.d.kod);
    EXPECT_EQ(r.d.length, req.size());
    EXPECT_EQ(r.d.nts_cookies, 1 + placeholders);
    const wire::Header h = wire::decode_header(r.out);
    EXPECT_EQ(h.mode, wire::Mode::kServer);
    EXPECT_EQ(h.stratum, 2);
    EXPECT_EQ(h.origin.raw, 0xDEADBEEFCAFEF00DULL);
    // Not valid until sealed: the worker stamps T3, then seals.
    size_t received = 0;
    EXPECT_EQ(s.check(r.out, received), nts::ReplyCheck::kBadAuthenticator);
    finish_reply(r.out, base::NtpTimestamp{0x1111222233334444ULL}, nullptr, &r.d.nts_seal, &s.seal);
    EXPECT_EQ(wire::decode_header(r.out).transmit.raw, 0x1111222233334444ULL);
    ASSERT_EQ(s.check(r.out, received), nts::ReplyCheck::kOk);
    EXPECT_EQ(received, 1 + placeholders);
  }
  EXPECT_EQ(s.counters.get(Counter::nts_requests), 3u);
  EXPECT_EQ(s.counters.get(Counter::nts_authenticated), 3u);
  EXPECT_EQ(s.counters.get(Counter::nts_key_current), 3u);
  EXPECT_EQ(s.counters.get(Counter::nts_cookies_issued), 1u + 3u + 8u);
  EXPECT_EQ(s.counters.get(Counter::processed), 3u);
  // The client table knows the client uses NTS.
  bool seen = false;
  s.tracker.table().for_each([&](const clients::ClientSnapshot& c) {
    seen = true;
    EXPECT_TRUE(c.flags & clients::kFlagNts);
    EXPECT_EQ(c.count, 3u);
  });
  EXPECT_TRUE(seen);
}

TEST(DecideNts, NaksACookieItCannotOpenWithTheUidAlone) {
  NtsSetup s;
  auto req = s.request();
  req[48 + 36 + 4 + 50] ^= 1;  // inside the cookie
  auto r = s.run(req);
  ASSERT_TRUE(r.d.reply);
  EXPECT_TRUE(r.d.kod);
  EXPECT_EQ(r.d.nts_nak, nts::Nak::kBadCookie);
  EXPECT_EQ(r.d.length, 48u + 36u);
  const wire::Header h = wire::decode_header(r.out);
  EXPECT_EQ(h.stratum, 0);
  EXPECT_EQ(h.reference_id, nts::kKissNtsNak);
  EXPECT_EQ(h.transmit.raw, 0xDEADBEEFCAFEF00DULL);
  size_t received = 0;
  EXPECT_EQ(s.check(r.out, received), nts::ReplyCheck::kNak);
  // A cookie older than `keep` periods, and one made by the next period's key.
  s.run(s.request(0, s.now_ns - 8 * 86400 * int64_t{1'000'000'000}), "198.51.100.2");
  auto next = s.run(s.request(0, s.now_ns + 86400 * int64_t{1'000'000'000}), "198.51.100.3");
  EXPECT_TRUE(next.d.nts_authenticated);
  // A header changed after sealing: the authenticator fails.
  auto changed = s.request();
  changed[47] ^= 1;
  EXPECT_EQ(s.run(changed, "198.51.100.4").d.nts_nak, nts::Nak::kBadAuthenticator);
  EXPECT_EQ(s.counters.get(Counter::nts_nak_sent), 3u);
  EXPECT_EQ(s.counters.get(Counter::nts_nak_bad_cookie), 1u);
  EXPECT_EQ(s.counters.get(Counter::nts_nak_expired_key), 1u);
  EXPECT_EQ(s.counters.get(Counter::nts_nak_bad_authenticator), 1u);
  EXPECT_EQ(s.counters.get(Counter::nts_key_next), 1u);
  EXPECT_EQ(s.counters.get(Counter::kod_sent), 3u);
  EXPECT_EQ(s.counters.get(Counter::auth_failed), 3u);
  EXPECT_EQ(s.counters.get(Counter::processed), 1u);
}

TEST(DecideNts, TheLimiterAnswersWithAnAuthenticatedKod) {
  NtsSetup s;
  std::vector<NtsSetup::Result> results;
  for (int i = 0; i < 3; ++i) results.push_back(s.run(s.request(1), "198.51.100.9", s.now_ns + i * 50'000'000));
  EXPECT_TRUE(results[0].d.reply && !results[0].d.kod);
  const Decision& kod = results[1].d;
  ASSERT_TRUE(kod.reply && kod.kod && kod.limited);
  EXPECT_FALSE(kod.stamp_transmit || kod.nts_seal_pending);  // sealed already
  EXPECT_EQ(wire::decode_header(results[1].out).reference_id, wire::kKissRate);
  size_t received = 0;
  EXPECT_EQ(s.check(results[1].out, received), nts::ReplyCheck::kOk);
  EXPECT_EQ(received, 2u);  // a rate-limited client still gets its cookies back
  EXPECT_FALSE(results[2].d.reply);
  EXPECT_EQ(results[2].d.reason, DropReason::kRateLimited);
  EXPECT_EQ(s.counters.get(Counter::rate_limited), 2u);
  EXPECT_EQ(s.counters.get(Counter::nts_requests), 3u);
  // A rate-limited request that fails authentication is dropped, not NAKed.
  auto bad = s.request();
  bad[47] ^= 1;
  const auto r = s.run(bad, "198.51.100.9", s.now_ns + 150'000'000);
  EXPECT_FALSE(r.d.reply);
}

TEST(DecideNts, DropsMalformedNtsBeforeTheClientTableAndDeclinesWhenOff) {
  NtsSetup s;
  auto req = s.request();
  // An 8-octet nonce with no additional padding: RFC 8915 section 5.6 says discard.
  const size_t auth = req.size() - 40;
  req.resize(req.size() - 8);
  base::store_be16(&req[auth + 2], 32);
  base::store_be16(&req[auth + 4], 8);
  auto r = s.run(req);
  EXPECT_FALSE(r.d.reply);
  EXPECT_EQ(r.d.reason, DropReason::kNtsMissingPadding);
  auto no_cookie = s.request();
  no_cookie[48 + 36] = 0x7f;  // the cookie becomes an unknown field
  EXPECT_EQ(s.run(no_cookie).d.reason, DropReason::kNtsMalformed);
  auto symmetric = s.request();
  symmetric[0] = 0x21;
  EXPECT_EQ(s.run(symmetric).d.reason, DropReason::kNtsMalformed);
  EXPECT_EQ(s.tracker.table().size(), 0u);
  EXPECT_EQ(s.counters.get(Counter::bad_format), 3u);
  EXPECT_EQ(s.counters.get(Counter::drop_nts_missing_padding), 1u);
  EXPECT_EQ(s.counters.get(Counter::drop_nts_malformed), 2u);
  // NTS off: declined, as before NTS existed.
  const auto good = s.request();
  s.rules.nts_secrets.reset();
  EXPECT_EQ(s.run(good).d.reason, DropReason::kNts);
  EXPECT_EQ(s.counters.get(Counter::declined), 1u);
  std::vector<uint8_t> out(2048);
  const auto plain = decide(good, false, 40000, base::NtpTimestamp{1}, synced(), out);
  EXPECT_EQ(plain.reason, DropReason::kNts);
}

}  // namespace
}  // namespace strata::server
