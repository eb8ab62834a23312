// AES-SIV-CMAC-256 through nettle (known answers computed with pyca/cryptography's AESSIV,
// which is OpenSSL's), the ChaCha random source, the secrets file and the cookie jar.
#include "nts/cookies.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/bytes.h"

#include "nts/aead.h"
#include "nts/random.h"

namespace strata::nts {
namespace {

std::string to_hex(std::span<const uint8_t> b) {
  std::string s;
  for (uint8_t x : b) s += fmt::format("{:02x}", x);
  return s;
}
Key counting_key(uint8_t start = 0) {
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(start + i);
  return k;
}
std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(NtsAead, MatchesAKnownAnswer) {
  // AESSIV(bytes(range(32))).encrypt(pt, [ad, nonce]): S2V over (AD, nonce, plaintext), as
  // RFC 8915 section 5.6 and nettle order them.
  const Siv siv(counting_key());
  std::array<uint8_t, 16> nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(100 + i);
  const std::string_view pt = "NTS cookie plaintext 0123456789";
  std::vector<uint8_t> out(pt.size() + kTagSize);
  siv.seal(nonce, bytes("associated data"), bytes(pt), out.data());
  EXPECT_EQ(to_hex(out),
            "8f81961d5c0ae02f7e8273b74d4fe45308aa281072a8f6b52d26eb2463fbe7921ed961b829b934c8de"
            "d49405c46e0f");
  std::vector<uint8_t> back(pt.size());
  ASSERT_TRUE(siv.open(nonce, bytes("associated data"), out, back.data()));
  EXPECT_EQ(std::string(back.begin(), back.end()), pt);
}

TEST(NtsAead, SealsInPlaceAsOutOfPlace) {
  const Siv siv(counting_key(7));
  const std::array<uint8_t, 16> nonce{1, 2, 3};
  std::vector<uint8_t> plain(100);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 13);
  std::vector<uint8_t> separate(plain.size() + kTagSize);
  siv.seal(nonce, bytes("ad"), plain, separate.data());
  std::vector<uint8_t> in_place(kTagSize);
  in_place.insert(in_place.end(), plain.begin(), plain.end());
  siv.seal(nonce, bytes("ad"), {in_place.data() + kTagSize, plain.size()}, in_place.data());
  EXPECT_EQ(in_place, separate);
}

TEST(NtsAead, RefusesAnythingAltered) {
  const Siv siv(counting_key());
  const std::array<uint8_t, 16> nonce{9};
  std::vector<uint8_t> sealed(32 + kTagSize);
  const std::vector<uint8_t> plain(32, 0x5a);
  siv.seal(nonce, bytes("header"), plain, sealed.data());
  std::vector<uint8_t> out(32);
  EXPECT_TRUE(siv.open(nonce, bytes("header"), sealed, out.data()));
  EXPECT_FALSE(siv.open(nonce, bytes("headeR"), sealed, out.data()));
  const std::array<uint8_t, 16> other{8};
  EXPECT_FALSE(siv.open(other, bytes("header"), sealed, out.data()));
  EXPECT_FALSE(siv.open({}, bytes("header"), sealed, out.data()));
  for (size_t i : {size_t{0}, size_t{15}, size_t{16}, sealed.size() - 1}) {
    auto bad = sealed;
    bad[i] ^= 1;
    EXPECT_FALSE(siv.open(nonce, bytes("header"), bad, out.data())) << i;
  }
  EXPECT_FALSE(siv.open(nonce, bytes("header"), std::span(sealed).first(15), out.data()));
  const Siv wrong(counting_key(1));
  EXPECT_FALSE(wrong.open(nonce, bytes("header"), sealed, out.data()));
}

TEST(NtsRandom, IsAKeystreamWhateverTheChunks) {
  const std::array<uint8_t, 32> seed{42};
  Random a(seed), b(seed);
  std::vector<uint8_t> whole(2000), parts(2000);
  a.fill(whole);
  for (size_t pos = 0; pos < parts.size();) {
    const size_t n = std::min<size_t>(parts.size() - pos, 1 + pos % 97);
    b.fill(std::span(parts).subspan(pos, n));
    pos += n;
  }
  EXPECT_EQ(whole, parts);
  // Not stuck, not zero: every octet value turns up in 2000 octets.
  std::array<bool, 256> seen{};
  for (uint8_t x : whole) seen[x] = true;
  EXPECT_GT(std::count(seen.begin(), seen.end(), true), 240);
  Random c, d;  // from getrandom
  std::array<uint8_t, 32> x{}, y{};
  c.fill(x);
  d.fill(y);
  EXPECT_NE(x, y);
}

TEST(NtsKeys, DerivesTheMasterKeyWithHkdfSha256) {
  // HKDF(SHA256, length 32, salt=BE64(20000), info=b'strata-nts-cookie-v1').derive(range(32))
  const Secret s = make_secret(counting_key());
  EXPECT_EQ(to_hex(derive_master_key(s, 20000)),
            "6d7071d8d8a4260c2d0b251a38a6cad52146039b5a8bc7e9527922fcb9d58ce6");
  EXPECT_NE(derive_master_key(s, 20001), derive_master_key(s, 20000));
  EXPECT_EQ(key_id(s, 20000), static_cast<uint32_t>(s.tag) << 24 | 20000u);
  EXPECT_EQ(period_of(86400 * 3 + 5, KeyPolicy{}), 3);
  EXPECT_EQ(period_of(-1, KeyPolicy{}), -1);
}

TEST(NtsKeys, ParsesTheSecretsFileStrictly) {
  const std::string a(64, 'a'), b = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
  const SecretsResult ok = parse_secrets("# fleet secret\n" + a + "\n  " + b + "  # old\n\n", "s");
  ASSERT_TRUE(ok.secrets) << ok.error;
  ASSERT_EQ(ok.secrets->secrets.size(), 2u);
  EXPECT_EQ(format_secret(ok.secrets->secrets[0]), a);
  EXPECT_EQ(format_secret(ok.secrets->secrets[1]), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_EQ(fingerprint(ok.secrets->secrets[0]).size(), 8u);
  EXPECT_NE(parse_secrets(a, "s").secrets->generation, parse_secrets(a, "s").secrets->generation);

  EXPECT_EQ(parse_secrets("\n" + a.substr(1) + "\n", "f").error,
            "f:2: a secret is 64 hex digits, this line has 63 characters");
  EXPECT_EQ(parse_secrets(a.substr(2) + "zz", "f").error, "f:1: not a hex digit at column 63");
  EXPECT_EQ(parse_secrets(a + "\n" + a, "f").error, "f:2: the same secret twice");
  EXPECT_EQ(parse_secrets("# nothing\n", "f").error, "f: no secret in the file");
  std::string five;
  for (char c : std::string("12345")) five += std::string(64, c) + "\n";
  EXPECT_EQ(parse_secrets(five, "f").error,
            "f:5: at most 4 secrets (one sealing, the others only opening)");
}

TEST(NtsKeys, CreatesAMissingSecretsFileOnceAndPrivately) {
  const std::string path = ::testing::TempDir() + "/nts-secret-" + std::to_string(::getpid());
  ::unlink(path.c_str());
  const SecretsResult made = load_secrets(path, true);
  ASSERT_TRUE(made.secrets) << made.error;
  EXPECT_TRUE(made.created);
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const SecretsResult again = load_secrets(path, true);
  ASSERT_TRUE(again.secrets) << again.error;
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.secrets->secrets[0].bytes, made.secrets->secrets[0].bytes);
  ::chmod(path.c_str(), 0640);  // the service's group may read it
  EXPECT_TRUE(load_secrets(path, true).secrets);
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(load_secrets(path, true).error,
            path + ": open to every user (mode 0644); chmod 600 it (or 640 with stratad's group)");
  ::unlink(path.c_str());
  EXPECT_FALSE(load_secrets(path, false).secrets);
  EXPECT_EQ(::access((path + ".new").c_str(), F_OK), -1);
}

// Two secrets whose tags differ (tags are one octet of a hash: pick until they do).
std::pair<Secret, Secret> two_secrets() {
  const Secret a = make_secret(counting_key(1));
  for (uint8_t i = 2;; ++i) {
    const Secret b = make_secret(counting_key(i));
    if (b.tag != a.tag) return {a, b};
  }
}
Secrets secrets_of(std::initializer_list<Secret> list, uint64_t generation) {
  Secrets s;
  s.secrets = list;
  s.generation = generation;
  return s;
}

TEST(NtsCookies, RoundTripWithinTheWindowOnly) {
  const auto [a, b] = two_secrets();
  const Secrets fleet = secrets_of({a}, 1001);
  const KeyPolicy policy{3600, 7};
  const std::array<uint8_t, 32> seed{1};
  Random random(seed);
  CookieJar jar;
  SessionKeys keys;
  keys.c2s = counting_key(10);
  keys.s2c = counting_key(50);
  const int64_t t0 = 3600 * 500000 + 10;
  std::array<uint8_t, kCookieSize> cookie{};
  jar.seal(fleet, policy, t0, keys, random, cookie);
  EXPECT_EQ(base::load_be32(cookie.data()), key_id(a, 500000));

  SessionKeys out;
  int64_t age = -99;
  EXPECT_EQ(jar.open(fleet, policy, t0, cookie, out, &age), CookieStatus::kOk);
  EXPECT_EQ(out.c2s, keys.c2s);
  EXPECT_EQ(out.s2c, keys.s2c);
  EXPECT_EQ(age, 0);
  // Another jar (another worker, another server with the same file) opens it too.
  CookieJar other;
  EXPECT_EQ(other.open(fleet, policy, t0 + 7 * 3600, cookie, out, &age), CookieStatus::kOk);
  EXPECT_EQ(age, 7);
  EXPECT_EQ(other.open(fleet, policy, t0 + 8 * 3600, cookie, out, &age), CookieStatus::kExpiredKey);
  EXPECT_EQ(age, 8);
  EXPECT_EQ(other.open(fleet, policy, t0 - 3600, cookie, out, &age), CookieStatus::kOk);
  EXPECT_EQ(age, -1);
  EXPECT_EQ(other.open(fleet, policy, t0 - 2 * 3600, cookie, out), CookieStatus::kUnknownKey);
  // Far past: the 24-bit period wraps, and the cookie is still not taken for a current one.
  EXPECT_NE(other.open(fleet, policy, t0 + (int64_t{1} << 24) * 3600, cookie, out), CookieStatus::kOk);

  // Another secret: unknown key; altered: bad cookie; not 100 octets: bad cookie.
  EXPECT_EQ(jar.open(secrets_of({b}, 1002), policy, t0, cookie, out), CookieStatus::kUnknownKey);
  auto bad = cookie;
  bad[50] ^= 0x80;
  EXPECT_EQ(jar.open(fleet, policy, t0, bad, out), CookieStatus::kBadCookie);
  bad = cookie;
  bad[3] ^= 1;  // the key id is authenticated: another period's key does not open it
  EXPECT_EQ(jar.open(fleet, policy, t0, bad, out), CookieStatus::kBadCookie);
  EXPECT_EQ(jar.open(fleet, policy, t0, std::span(cookie).first(99), out), CookieStatus::kBadCookie);
}

TEST(NtsCookies, RollsASecretWithoutRefusingACookie) {
  const auto [old_secret, new_secret] = two_secrets();
  const KeyPolicy policy{86400, 7};
  Random random;
  CookieJar jar;
  SessionKeys keys;
  keys.c2s = counting_key(3);
  const int64_t now = 1'800'000'000;
  std::array<uint8_t, kCookieSize> before{}, during{}, after{};
  // 1. The old secret alone; 2. the new one added as the second line (opens only);
  // 3. the new one first (seals), the old one kept until its cookies expire.
  jar.seal(secrets_of({old_secret}, 1), policy, now, keys, random, before);
  jar.seal(secrets_of({old_secret, new_secret}, 2), policy, now, keys, random, during);
  jar.seal(secrets_of({new_secret, old_secret}, 3), policy, now, keys, random, after);
  EXPECT_EQ(base::load_be32(during.data()) >> 24, old_secret.tag);
  EXPECT_EQ(base::load_be32(after.data()) >> 24, new_secret.tag);
  SessionKeys out;
  const Secrets third = secrets_of({new_secret, old_secret}, 3);
  for (const auto& c : {before, during, after})
    EXPECT_EQ(jar.open(third, policy, now, c, out), CookieStatus::kOk);
  EXPECT_EQ(jar.open(secrets_of({new_secret}, 4), policy, now, before, out), CookieStatus::kUnknownKey);
  // The cache follows a reload: same generation numbers are never reused with new secrets.
  EXPECT_EQ(jar.open(secrets_of({old_secret}, 5), policy, now, after, out), CookieStatus::kUnknownKey);
}

}  // namespace
}  // namespace strata::nts
