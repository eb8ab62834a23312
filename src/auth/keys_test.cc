#include "auth/keys.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::auth {
namespace {

std::vector<uint8_t> hex(std::string_view s) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < s.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(s.substr(i, 2)), nullptr, 16)));
  return out;
}

std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i);
  return v;
}

TEST(Keys, ParsesNtpKeysSyntax) {
  const auto p = parse_keys_text(
      "# ntp.keys\n"
      "1 MD5 sesame\n"
      "2 SHA1 00112233445566778899aabbccddeeff0011223344   # over 20 characters: hex\n"
      "3 AES128CMAC 2b7e151628aed2a6abf7158809cf4f3c\n"
      "4 M short\n"
      "5 aes 2b7e151628aed2a6abf7158809cf4f3c\n"
      "\n",
      "ntp.keys");
  ASSERT_TRUE(p.errors.empty()) << p.errors[0].to_string();
  ASSERT_EQ(p.keys.size(), 5u);
  EXPECT_EQ(p.keys[0].algorithm, Algorithm::kMd5);
  EXPECT_EQ(std::string(p.keys[0].secret.begin(), p.keys[0].secret.begin() + p.keys[0].secret_length),
            "sesame");
  EXPECT_EQ(p.keys[1].algorithm, Algorithm::kSha1);
  EXPECT_EQ(p.keys[1].secret_length, 21);  // 42 hex digits
  EXPECT_EQ(p.keys[1].secret[20], 0x44);
  EXPECT_EQ(p.keys[2].algorithm, Algorithm::kAes128Cmac);
  EXPECT_EQ(p.keys[3].secret_length, 5);  // "short": text
}

TEST(Keys, ParsesChronySyntax) {
  const auto p = parse_keys_text(
      "10 ASCII:a-rather-long-text-key-of-30ch\n"
      "11 SHA1 HEX:0011223344556677889900112233445566778899\n"
      "12 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c\n"
      "4000000000 MD5 ASCII:big\n",
      "chrony.keys");
  ASSERT_TRUE(p.errors.empty()) << p.errors[0].to_string();
  ASSERT_EQ(p.keys.size(), 4u);
  EXPECT_EQ(p.keys[0].algorithm, Algorithm::kMd5);
  EXPECT_EQ(p.keys[0].secret_length, 30);
  EXPECT_EQ(p.keys[1].secret_length, 20);
  EXPECT_EQ(p.keys[2].algorithm, Algorithm::kAes128Cmac);
  EXPECT_EQ(p.keys[3].id, 4000000000u);
}

// Found by the security review (issue 12, finding 11): duplicates were found by a linear
// search per key (165,535 keys: 10 s). 200,000 keys now parse in well under a second; the
// duplicate is still named.
TEST(Keys, ManyKeysParseInLinearTime) {
  std::string text;
  for (uint32_t id = 1; id <= 200000; ++id) text += std::to_string(id) + " SHA1 HEX:00112233445566778899aabbccddeeff00112233\n";
  text += "7 SHA1 HEX:00112233445566778899aabbccddeeff00112233\n";
  const auto parsed = parse_keys_text(text, "big.keys");
  EXPECT_EQ(parsed.keys.size(), 200000u);
  ASSERT_EQ(parsed.errors.size(), 1u);
  EXPECT_EQ(parsed.errors[0].to_string(), "big.keys:200001: key 7 is defined twice");
}

TEST(Keys, ErrorsNameFileLineAndReason) {
  const auto p = parse_keys_text(
      "1 MD5 ok\n"
      "0 MD5 zero\n"
      "2 SHA256 x\n"
      "3 AES128CMAC 00112233\n"
      "1 MD5 again\n"
      "4 MD5 HEX:0g\n"
      "x MD5 y\n"
      "70000 MD5 bigid\n"
      "5\n",
      "k");
  ASSERT_EQ(p.keys.size(), 1u);
  ASSERT_EQ(p.errors.size(), 8u);
  EXPECT_EQ(p.errors[0].line, 2);
  EXPECT_NE(p.errors[0].to_string().find("k:2: "), std::string::npos);
  EXPECT_NE(p.errors[1].reason.find("SHA256"), std::string::npos);
  EXPECT_NE(p.errors[2].reason.find("16 octets"), std::string::npos);
  EXPECT_NE(p.errors[3].reason.find("twice"), std::string::npos);
  EXPECT_NE(p.errors[6].reason.find("65535"), std::string::npos);
}

TEST(Keys, Md5AndSha1AreDigestOfKeyThenMessage) {
  // Expected values: python3 hashlib.md5(b"sesame" + bytes(range(48))), hashlib.sha1(...).
  const auto msg = counting(48);
  Key md5;
  md5.id = 7;
  md5.algorithm = Algorithm::kMd5;
  const std::string s = "sesame";
  std::copy(s.begin(), s.end(), md5.secret.begin());
  md5.secret_length = 6;
  uint8_t mac[kMaxMac];
  ASSERT_EQ(sign(md5, msg, mac), 20u);
  EXPECT_EQ(key_id_of(mac), 7u);
  EXPECT_EQ(std::vector<uint8_t>(mac + 4, mac + 20), hex("a5100024471cfbf5836cb28ebf1176f7"));
  EXPECT_TRUE(verify(md5, msg, {mac, 20}));
  mac[19] ^= 1;
  EXPECT_FALSE(verify(md5, msg, {mac, 20}));
  EXPECT_FALSE(verify(md5, msg, {mac, 24}));

  Key sha;
  sha.id = 2;
  sha.algorithm = Algorithm::kSha1;
  const auto k = hex("00112233445566778899aabbccddeeff0011223344");
  std::copy(k.begin(), k.end(), sha.secret.begin());
  sha.secret_length = static_cast<uint8_t>(k.size());
  ASSERT_EQ(sign(sha, msg, mac), 24u);
  EXPECT_EQ(std::vector<uint8_t>(mac + 4, mac + 24), hex("52d5ce2d5982eb2dfefed36d0ec8b3a5850bfab2"));
  EXPECT_TRUE(verify(sha, msg, {mac, 24}));
}

TEST(Keys, AesCmacMatchesRfc4493) {
  Key key;
  key.algorithm = Algorithm::kAes128Cmac;
  key.id = 1;
  const auto k = hex("2b7e151628aed2a6abf7158809cf4f3c");
  std::copy(k.begin(), k.end(), key.secret.begin());
  key.secret_length = 16;
  uint8_t mac[kMaxMac];
  ASSERT_EQ(sign(key, {}, mac), 20u);
  EXPECT_EQ(std::vector<uint8_t>(mac + 4, mac + 20), hex("bb1d6929e95937287fa37d129b756746"));
  const auto m16 = hex("6bc1bee22e409f96e93d7e117393172a");
  ASSERT_EQ(sign(key, m16, mac), 20u);
  EXPECT_EQ(std::vector<uint8_t>(mac + 4, mac + 20), hex("070a16b46b4d4144f79bdd9dd04a287c"));
  EXPECT_TRUE(verify(key, m16, {mac, 20}));
}

TEST(Keys, RingFindsById) {
  auto p = parse_keys_text("9 MD5 a\n3 MD5 b\n5 SHA1 c\n", "k");
  const KeyRing ring(p.keys);
  ASSERT_NE(ring.find(5), nullptr);
  EXPECT_EQ(ring.find(5)->algorithm, Algorithm::kSha1);
  EXPECT_NE(ring.find(9), nullptr);
  EXPECT_EQ(ring.find(4), nullptr);
  EXPECT_EQ(ring.find(10), nullptr);
  EXPECT_EQ(KeyRing().find(1), nullptr);
}

}  // namespace
}  // namespace strata::auth
