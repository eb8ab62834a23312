// Keys files and MACs (see keys.h).
#include "auth/keys.h"

#include <fmt/format.h>
#include <nettle/cmac.h>
#include <nettle/md5.h>
#include <nettle/memops.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha1.h>

#include <algorithm>
#include <unordered_set>
#include <charconv>
#include <optional>

#include "base/bytes.h"
#include "base/text.h"

namespace strata::auth {

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kMd5: return "MD5";
    case Algorithm::kSha1: return "SHA1";
    case Algorithm::kAes128Cmac: return "AES128CMAC";
  }
  return "?";
}

size_t digest_length(Algorithm a) { return a == Algorithm::kSha1 ? 20 : 16; }

std::string KeyError::to_string() const {
  return line > 0 ? fmt::format("{}:{}: {}", file, line, reason) : fmt::format("{}: {}", file, reason);
}

namespace {

std::string upper(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return r;
}

std::optional<Algorithm> parse_algorithm(std::string_view word) {
  const std::string u = upper(word);
  if (u == "MD5" || u == "M") return Algorithm::kMd5;
  if (u == "SHA1" || u == "SHA-1") return Algorithm::kSha1;
  if (u == "AES128CMAC" || u == "AES" || u == "AES-128" || u == "AES128" || u == "AES-128-CMAC" ||
      u == "CMAC")
    return Algorithm::kAes128Cmac;
  return std::nullopt;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Fills `key.secret` from hex digits; returns the reason it cannot.
std::string set_hex(std::string_view hex, Key& key) {
  if (hex.empty() || hex.size() % 2 != 0) return "a hex key needs an even number of digits";
  if (hex.size() / 2 > kMaxSecret)
    return fmt::format("a key is at most {} octets ({} hex digits)", kMaxSecret, 2 * kMaxSecret);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return fmt::format("'{}' is not hex", hex);
    key.secret[i / 2] = static_cast<uint8_t>(hi << 4 | lo);
  }
  key.secret_length = static_cast<uint8_t>(hex.size() / 2);
  return "";
}

std::string set_text(std::string_view text, Key& key) {
  if (text.empty()) return "empty key";
  if (text.size() > kMaxSecret) return fmt::format("a key is at most {} octets", kMaxSecret);
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) > '~')
      return "a text key must be printable ASCII";
  std::copy(text.begin(), text.end(), key.secret.begin());
  key.secret_length = static_cast<uint8_t>(text.size());
  return "";
}

std::string parse_line(std::string_view line, Key& key) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  if (words.size() < 2 || words.size() > 3) return "expected 'ID TYPE KEY' (ntp.keys) or 'ID [TYPE] KEY' (chrony)";
  uint64_t id = 0;
  const auto [end, ec] = std::from_chars(words[0].data(), words[0].data() + words[0].size(), id);
  if (ec != std::errc{} || end != words[0].data() + words[0].size())
    return fmt::format("'{}' is not a key id", words[0]);
  if (id == 0 || id > 0xffffffffULL) return "a key id is 1 to 4294967295 (0 is reserved)";
  key.id = static_cast<uint32_t>(id);
  const std::string_view secret = words.back();
  if (words.size() == 3) {
    const auto a = parse_algorithm(words[1]);
    if (!a) return fmt::format("unsupported key type '{}' (MD5, SHA1 or AES128CMAC)", words[1]);
    key.algorithm = *a;
  } else {
    key.algorithm = Algorithm::kMd5;  // chrony's default
  }
  const bool chrony_style = words.size() == 2 || secret.starts_with("ASCII:") || secret.starts_with("HEX:");
  std::string e;
  if (secret.starts_with("HEX:")) e = set_hex(secret.substr(4), key);
  else if (secret.starts_with("ASCII:")) e = set_text(secret.substr(6), key);
  else if (chrony_style || secret.size() <= 20) e = set_text(secret, key);
  else e = set_hex(secret, key);  // ntpd: more than 20 characters is hex
  if (!e.empty()) return e;
  if (!chrony_style && key.id > 65535) return "an ntp.keys key id is 1 to 65535";
  if (key.algorithm == Algorithm::kAes128Cmac && key.secret_length != 16)
    return fmt::format("an AES-128-CMAC key is 16 octets (32 hex digits), not {}", key.secret_length);
  return "";
}

}  // namespace

ParsedKeys parse_keys_text(std::string_view text, const std::string& name) {
  ParsedKeys out;
  std::unordered_set<uint32_t> ids;  // a linear search per key was O(n^2): 10 s for 165,535 keys
  base::for_each_content_line(text, [&](int number, std::string_view line) {
    Key key;
    if (std::string e = parse_line(line, key); !e.empty()) {
      out.errors.push_back({name, number, std::move(e)});
    } else if (!ids.insert(key.id).second) {
      out.errors.push_back({name, number, fmt::format("key {} is defined twice", key.id)});
    } else {
      out.keys.push_back(key);
    }
  });
  return out;
}

KeyRing::KeyRing(std::vector<Key> keys) : keys_(std::move(keys)) {
  std::sort(keys_.begin(), keys_.end(), [](const Key& a, const Key& b) { return a.id < b.id; });
}

const Key* KeyRing::find(uint32_t id) const {
  const auto it = std::lower_bound(keys_.begin(), keys_.end(), id,
                                   [](const Key& k, uint32_t v) { return k.id < v; });
  return it != keys_.end() && it->id == id ? &*it : nullptr;
}

namespace {

// The digest of `message` under `key`, `digest_length` octets into `out`.
void digest(const Key& key, std::span<const uint8_t> message, uint8_t* out) {
  switch (key.algorithm) {
    case Algorithm::kMd5:
    case Algorithm::kSha1: {  // H(key || message), through nettle's generic hash interface
      const nettle_hash& h = key.algorithm == Algorithm::kMd5 ? nettle_md5 : nettle_sha1;
      union {
        md5_ctx md5;
        sha1_ctx sha1;
      } c;
      h.init(&c);
      h.update(&c, key.secret_length, key.secret.data());
      h.update(&c, message.size(), message.data());
      h.digest(&c, h.digest_size, out);
      return;
    }
    case Algorithm::kAes128Cmac: {
      cmac_aes128_ctx c;
      cmac_aes128_set_key(&c, key.secret.data());
      cmac_aes128_update(&c, message.size(), message.data());
      cmac_aes128_digest(&c, 16, out);
      return;
    }
  }
}

}  // namespace

size_t sign(const Key& key, std::span<const uint8_t> message, std::span<uint8_t> out) {
  const size_t n = kKeyIdSize + digest_length(key.algorithm);
  if (out.size() < n) return 0;
  base::store_be32(out.data(), key.id);
  digest(key, message, out.data() + kKeyIdSize);
  return n;
}

bool verify(const Key& key, std::span<const uint8_t> message, std::span<const uint8_t> mac) {
  const size_t n = digest_length(key.algorithm);
  if (mac.size() != kKeyIdSize + n) return false;
  uint8_t expected[20];
  digest(key, message, expected);
  return memeql_sec(expected, mac.data() + kKeyIdSize, n) != 0;
}

uint32_t key_id_of(std::span<const uint8_t> mac) {
  return mac.size() >= kKeyIdSize ? base::load_be32(mac.data()) : 0;
}

}  // namespace strata::auth
