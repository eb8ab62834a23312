// Symmetric keys (RFC 5905 section 7.3, RFC 8573): read a keys file in ntpd's ntp.keys syntax
// or chrony's, compute and check the legacy MAC (key id + digest) of NTP and mode-6 packets.
// MD5 and SHA-1 are H(key || message), AES-128-CMAC is RFC 4493 over the message; digests are
// cut to 20 octets as NTPv4 requires. The crypto comes from nettle (Debian's libnettle): its
// contexts live on the stack, so signing and checking on the packet path allocate nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata::auth {

enum class Algorithm : uint8_t { kMd5, kSha1, kAes128Cmac };

std::string_view algorithm_name(Algorithm a);
// Octets of the MAC's digest part (16 for MD5 and AES-CMAC, 20 for SHA-1).
size_t digest_length(Algorithm a);

inline constexpr size_t kMaxSecret = 32;   // ntpd accepts at most 64 hex digits
inline constexpr size_t kKeyIdSize = 4;
inline constexpr size_t kMaxMac = kKeyIdSize + 20;

// What to do with a request whose MAC fails: drop it (NTPsec, chrony) or answer with a
// crypto-NAK, the time with a MAC of key id 0 alone (ntp.org).
enum class BadMac : uint8_t { kDrop, kCryptoNak };

struct Key {
  uint32_t id = 0;
  Algorithm algorithm = Algorithm::kMd5;
  std::array<uint8_t, kMaxSecret> secret{};
  uint8_t secret_length = 0;
  bool trusted = true;  // may authenticate requests (ntpd's trustedkey)
};

struct KeyError {
  std::string file;
  int line = 0;
  std::string reason;
  std::string to_string() const;
};

struct ParsedKeys {
  std::vector<Key> keys;
  std::vector<KeyError> errors;
};

// Parses a keys file. Each line is one key, '#' starts a comment:
//   ntp.keys: ID TYPE KEY   TYPE MD5 (or M), SHA1 (SHA-1), AES128CMAC (AES, AES-128,
//                           AES128); KEY of at most 20 characters is the text itself,
//                           longer is hex (ntpd's rule)
//   chrony:   ID [TYPE] KEY with KEY written ASCII:text or HEX:digits (TYPE default MD5)
// A 1..65535 id for ntpd, up to 2^32-1 for chrony. AES-CMAC keys must be 16 octets (chrony's
// rule; ntpd would pad or cut silently, which hides typos). Duplicate ids are errors.
ParsedKeys parse_keys_text(std::string_view text, const std::string& name);

// The keys in force, sorted by id for a binary search on the packet path.
class KeyRing {
 public:
  KeyRing() = default;
  explicit KeyRing(std::vector<Key> keys);
  const Key* find(uint32_t id) const;
  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  const std::vector<Key>& keys() const { return keys_; }

 private:
  std::vector<Key> keys_;
};

// Writes key id + digest of `message` at `out` (kKeyIdSize + digest_length octets). Returns the
// octets written, 0 when `out` is too small.
size_t sign(const Key& key, std::span<const uint8_t> message, std::span<uint8_t> out);

// Checks the MAC `mac` (key id + digest) of `message` with `key`: same length, constant-time
// compare. The caller matched the key id.
bool verify(const Key& key, std::span<const uint8_t> message, std::span<const uint8_t> mac);

// Reads a key id (big-endian 32 bits) from the start of a MAC field.
uint32_t key_id_of(std::span<const uint8_t> mac);

}  // namespace strata::auth
