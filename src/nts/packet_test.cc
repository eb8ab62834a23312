// NTS extension fields on NTP packets: a client request built by our client code, checked
// and answered by the server code, the reply checked by the client code; every refusal of
// RFC 8915 section 5.
#include "nts/packet.h"

#include <vector>

#include <gtest/gtest.h>

#include "base/bytes.h"

namespace strata::nts {
namespace {

Key filled(uint8_t v) {
  Key k{};
  k.fill(v);
  return k;
}

struct Fixture {
  Secrets secrets;
  KeyPolicy policy{86400, 7};
  int64_t now = 1'800'000'000;
  PacketState server;
  SessionKeys keys;
  std::array<uint8_t, kCookieSize> cookie{};
  std::array<uint8_t, 32> uid{};
  Siv c2s, s2c_client;
  Random client_random;

  Fixture() {
    secrets.secrets.push_back(make_secret(filled(0x11)));
    secrets.generation = 77;
    keys.c2s = filled(0xc2);
    keys.s2c = filled(0x52);
    server.jar.seal(secrets, policy, now, keys, server.random, cookie);
    client_random.fill(uid);
    c2s.set_key(keys.c2s);
    s2c_client.set_key(keys.s2c);
  }
  std::vector<uint8_t> request(unsigned placeholders = 0) {
    std::vector<uint8_t> p(2048);
    p[0] = 0x23;  // v4 client
    const size_t n = append_client_fields(p, uid, cookie, placeholders, c2s, client_random);
    p.resize(n);
    return p;
  }
};

void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void field(std::vector<uint8_t>& v, uint16_t type, size_t body, uint8_t fill = 0) {
  put16(v, type);
  put16(v, static_cast<uint16_t>(4 + body));
  for (size_t i = 0; i < body; ++i) v.push_back(fill);
}

TEST(NtsPacket, AnswersARequestWithAsManyCookiesAsItAsksAndTheSameLength) {
  for (unsigned placeholders : {0u, 1u, 3u, 7u}) {
    Fixture f;
    const std::vector<uint8_t> req = f.request(placeholders);
    EXPECT_EQ(req.size(), 228u + 104u * placeholders);  // chrony's sizes
    ParsedRequest parsed;
    ASSERT_EQ(parse_request(req, parsed), Problem::kNone);
    EXPECT_EQ(parsed.placeholders, placeholders);
    SessionKeys keys;
    const Checked c = check_request(req, parsed, f.secrets, f.policy, f.now, f.server, keys);
    ASSERT_EQ(c.problem, Problem::kNone);
    ASSERT_EQ(c.nak, Nak::kNone);
    EXPECT_EQ(c.cookies, 1 + placeholders);
    EXPECT_EQ(keys.s2c, f.keys.s2c);

    std::vector<uint8_t> reply(2048);
    reply[0] = 0x24;
    Siv s2c;
    ReplySeal seal;
    unsigned sent = 0;
    const size_t n = append_reply_fields(reply, parsed, c.cookies, req.size(), f.secrets, f.policy,
                                         f.now, keys, f.server, s2c, seal, &sent);
    EXPECT_EQ(n, req.size());
    EXPECT_EQ(sent, 1 + placeholders);
    base::store_be64(reply.data() + 40, 0x1234567887654321);  // T3, then the seal
    seal_reply(reply, seal, s2c);
    reply.resize(n);

    std::array<ClientCookie, 8> got{};
    size_t received = 0;
    ASSERT_EQ(check_reply(reply, f.uid, f.s2c_client, got, received), ReplyCheck::kOk);
    ASSERT_EQ(received, 1 + placeholders);
    for (size_t i = 0; i < received; ++i) {
      ASSERT_EQ(got[i].length, kCookieSize);
      SessionKeys back;
      EXPECT_EQ(f.server.jar.open(f.secrets, f.policy, f.now, got[i].view(), back), CookieStatus::kOk);
      EXPECT_EQ(back.c2s, f.keys.c2s);
    }
    // The seal covers T3: changing it after sealing breaks the authenticator.
    reply[47] ^= 1;
    EXPECT_EQ(check_reply(reply, f.uid, f.s2c_client, got, received), ReplyCheck::kBadAuthenticator);
  }
}

TEST(NtsPacket, NeverOutgrowsTheRequest) {
  Fixture f;
  const std::vector<uint8_t> req = f.request(3);
  ParsedRequest parsed;
  ASSERT_EQ(parse_request(req, parsed), Problem::kNone);
  SessionKeys keys;
  ASSERT_EQ(check_request(req, parsed, f.secrets, f.policy, f.now, f.server, keys).cookies, 4u);
  std::vector<uint8_t> reply(2048);
  Siv s2c;
  ReplySeal seal;
  unsigned sent = 0;
  // Room for two cookies only: two are sent and the reply is exactly `max_length` long.
  const size_t room = 48 + 36 + 40 + 2 * 104 + 20;
  EXPECT_EQ(append_reply_fields(reply, parsed, 4, room, f.secrets, f.policy, f.now, keys, f.server,
                                s2c, seal, &sent),
            room);
  EXPECT_EQ(sent, 2u);
  EXPECT_EQ(append_reply_fields(reply, parsed, 4, 48 + 36 + 39, f.secrets, f.policy, f.now, keys,
                                f.server, s2c, seal),
            0u);
  // More than 8 asked for: 8.
  EXPECT_EQ(append_reply_fields(reply, parsed, 20, 2048, f.secrets, f.policy, f.now, keys, f.server,
                                s2c, seal, &sent),
            2048u);
  EXPECT_EQ(sent, 8u);
}

TEST(NtsPacket, NaksBadCookiesAndBadAuthenticatorsWithTheUid) {
  Fixture f;
  std::vector<uint8_t> req = f.request();
  ParsedRequest parsed;
  SessionKeys keys;
  {
    auto bad = req;
    bad[48 + 36 + 4 + 60] ^= 1;  // inside the cookie
    ASSERT_EQ(parse_request(bad, parsed), Problem::kNone);
    EXPECT_EQ(check_request(bad, parsed, f.secrets, f.policy, f.now, f.server, keys).nak, Nak::kBadCookie);
  }
  {
    auto bad = req;
    bad[40] ^= 1;  // the header is authenticated
    ASSERT_EQ(parse_request(bad, parsed), Problem::kNone);
    EXPECT_EQ(check_request(bad, parsed, f.secrets, f.policy, f.now, f.server, keys).nak,
              Nak::kBadAuthenticator);
    std::vector<uint8_t> nak(256);
    nak[1] = 0;
    base::store_be32(nak.data() + 12, kKissNtsNak);
    const size_t n = append_nak_fields(nak, parsed);
    EXPECT_EQ(n, 48u + 36u);
    nak.resize(n);
    std::array<ClientCookie, 8> got{};
    size_t received = 0;
    EXPECT_EQ(check_reply(nak, f.uid, f.s2c_client, got, received), ReplyCheck::kNak);
    auto other_uid = f.uid;
    other_uid[0] ^= 1;
    EXPECT_EQ(check_reply(nak, other_uid, f.s2c_client, got, received), ReplyCheck::kNoUid);
  }
  ASSERT_EQ(parse_request(req, parsed), Problem::kNone);
  EXPECT_EQ(check_request(req, parsed, f.secrets, f.policy, f.now + 9 * 86400, f.server, keys).nak,
            Nak::kExpiredKey);
  Secrets other;
  other.secrets.push_back(make_secret(filled(0x12)));
  other.generation = 78;
  if (other.secrets[0].tag != f.secrets.secrets[0].tag) {
    EXPECT_EQ(check_request(req, parsed, other, f.policy, f.now, f.server, keys).nak, Nak::kUnknownKey);
  }
}

TEST(NtsPacket, CountsEncryptedPlaceholders) {
  Fixture f;
  // A request whose placeholders ride inside the authenticator: UID, cookie, then 0x0404
  // with two encrypted placeholders.
  std::vector<uint8_t> req(48, 0);
  req[0] = 0x23;
  put16(req, kEfUniqueIdentifier);
  put16(req, 36);
  req.insert(req.end(), f.uid.begin(), f.uid.end());
  put16(req, kEfCookie);
  put16(req, 104);
  req.insert(req.end(), f.cookie.begin(), f.cookie.end());
  std::vector<uint8_t> plain;
  field(plain, kEfCookiePlaceholder, 100);
  field(plain, kEfCookiePlaceholder, 100);
  const size_t ad = req.size();
  put16(req, kEfAuthenticator);
  put16(req, static_cast<uint16_t>(4 + 4 + 16 + 16 + plain.size()));
  put16(req, 16);
  put16(req, static_cast<uint16_t>(16 + plain.size()));
  const std::array<uint8_t, 16> nonce{5, 6, 7};
  req.insert(req.end(), nonce.begin(), nonce.end());
  req.resize(req.size() + 16 + plain.size());
  f.c2s.seal(nonce, std::span(req).first(ad), plain, req.data() + ad + 8 + 16);
  ParsedRequest parsed;
  ASSERT_EQ(parse_request(req, parsed), Problem::kNone);
  EXPECT_EQ(parsed.placeholders, 0u);
  SessionKeys keys;
  const Checked c = check_request(req, parsed, f.secrets, f.policy, f.now, f.server, keys);
  EXPECT_EQ(c.problem, Problem::kNone);
  EXPECT_EQ(c.cookies, 3u);
}

// A request assembled field by field: UID, cookie, `extra` fields, then an authenticator with
// the given nonce length and padding (its tag is garbage: these are refused before it counts).
std::vector<uint8_t> shaped(size_t uid, int cookies, const std::vector<std::pair<uint16_t, size_t>>& extra,
                            size_t nonce, size_t padding, bool auth = true, bool after_auth = false) {
  std::vector<uint8_t> p(48, 0);
  p[0] = 0x23;
  if (uid > 0) field(p, kEfUniqueIdentifier, uid, 1);
  for (int i = 0; i < cookies; ++i) field(p, kEfCookie, 100, 2);
  for (auto [type, body] : extra) field(p, type, body);
  if (auth) {
    const size_t padded = (nonce + 3) & ~size_t{3};
    put16(p, kEfAuthenticator);
    put16(p, static_cast<uint16_t>(4 + 4 + padded + 16 + padding));
    put16(p, static_cast<uint16_t>(nonce));
    put16(p, 16);
    p.resize(p.size() + padded + 16 + padding);
  }
  if (after_auth) field(p, 0x7777, 28);
  return p;
}

TEST(NtsPacket, RefusesWhatSection5Forbids) {
  ParsedRequest r;
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 16, 0), r), Problem::kNone);
  EXPECT_EQ(parse_request(shaped(32, 1, {{0x2004, 28}}, 16, 0), r), Problem::kNone);  // ignored EF
  EXPECT_EQ(parse_request(shaped(0, 1, {}, 16, 0), r), Problem::kMissingField);
  EXPECT_EQ(parse_request(shaped(32, 0, {}, 16, 0), r), Problem::kMissingField);
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 16, 0, false), r), Problem::kMissingField);
  EXPECT_EQ(parse_request(shaped(28, 1, {}, 16, 0), r), Problem::kMalformed);  // UID < 32
  EXPECT_EQ(parse_request(shaped(32, 2, {}, 16, 0), r), Problem::kMalformed);
  EXPECT_EQ(parse_request(shaped(32, 1, {{kEfUniqueIdentifier, 32}}, 16, 0), r), Problem::kMalformed);
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 16, 0, true, true), r), Problem::kAuthenticatorNotLast);
  EXPECT_EQ(parse_request(shaped(32, 1, {{kEfCookiePlaceholder, 96}}, 16, 0), r),
            Problem::kPlaceholderLength);
  EXPECT_EQ(parse_request(shaped(32, 1, {{kEfCookiePlaceholder, 100}, {kEfCookiePlaceholder, 100}}, 16, 0), r),
            Problem::kNone);
  EXPECT_EQ(r.placeholders, 2u);
  // Nonce padding: an 8-octet nonce needs 8 octets of additional padding.
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 8, 0), r), Problem::kMissingPadding);
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 8, 4), r), Problem::kMissingPadding);
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 8, 8), r), Problem::kNone);
  EXPECT_EQ(r.nonce.size(), 8u);
  EXPECT_EQ(parse_request(shaped(32, 1, {}, 0, 16), r), Problem::kBadLengths);
  // Field lengths that do not fit.
  auto p = shaped(32, 1, {}, 16, 0);
  p[48 + 3] = 37;  // the UID's length not a multiple of 4
  EXPECT_EQ(parse_request(p, r), Problem::kMalformed);
  p = shaped(32, 1, {}, 16, 0);
  p.push_back(0);
  EXPECT_EQ(parse_request(p, r), Problem::kAuthenticatorNotLast);
  p = shaped(32, 1, {}, 16, 0);
  base::store_be16(p.data() + p.size() - 40 + 6, 200);  // ciphertext longer than the field
  EXPECT_EQ(parse_request(p, r), Problem::kBadLengths);
}

}  // namespace
}  // namespace strata::nts
