// NTS cookies and the master keys that seal them (RFC 8915 section 6, in the layout chrony,
// cfnts and facebook/time use): key id (4) | nonce (16) | SIV tag (16) | C2S and S2C
// encrypted (64) = 100 octets, sealed with AES-SIV-CMAC-256 under a master key, the key id as
// associated data.
//
// Master keys are not stored: each is derived from a secret and a period number,
//   K = HKDF-SHA256(IKM = secret, salt = BE64(period), info = "strata-nts-cookie-v1"),
// period = unix time / rotate. So every server holding the same secret file issues and
// accepts the same keys with no key service, and a restart loses nothing. A cookie is
// accepted under the current period's key, the `keep` periods before it and the next one
// (clocks of a fleet differ). The key id is tag (8 bits, from the secret) | period (low 24
// bits): the tag tells which of the file's secrets sealed it, so a secret can be rolled
// without a NAK (docs/nts.md), the period says whether the key is current, expired or
// unknown. A secrets file: one secret per line, 64 hex digits, '#' comments; the first line
// seals, every line opens.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nts/aead.h"
#include "nts/random.h"

namespace strata::nts {

inline constexpr size_t kCookieSize = 100;
inline constexpr size_t kCookieNonceSize = 16;
inline constexpr size_t kSecretSize = 32;
inline constexpr size_t kMaxSecrets = 4;
inline constexpr int kMaxKeep = 30;

struct Secret {
  std::array<uint8_t, kSecretSize> bytes{};
  uint8_t tag = 0;  // top octet of the key ids this secret's keys have
};

// The secrets in force. `generation` is unique per load (per-worker caches compare it).
struct Secrets {
  std::vector<Secret> secrets;  // [0] seals
  uint64_t generation = 0;
};

// How long a master key is current and how many past ones are still accepted.
struct KeyPolicy {
  int64_t rotate_s = 86400;
  int keep = 7;
  friend bool operator==(const KeyPolicy&, const KeyPolicy&) = default;
};

struct SessionKeys {
  Key c2s{};
  Key s2c{};
};

struct SecretsResult {
  std::shared_ptr<const Secrets> secrets;  // null on error
  std::string error;                       // "file:line: reason" or "file: reason"
  bool created = false;                    // the file did not exist and was written
};

// Parses a secrets file's text (`name` for errors).
SecretsResult parse_secrets(std::string_view text, const std::string& name);
// Reads `path`; if it does not exist and `create`, writes one random secret to it first
// (mode 0600, written to a temporary file and renamed, never over an existing file).
SecretsResult load_secrets(const std::string& path, bool create);
// A secret line as the file holds it, and the short fingerprint the log shows instead.
std::string format_secret(const Secret& s);
std::string fingerprint(const Secret& s);
Secret make_secret(std::span<const uint8_t, kSecretSize> bytes);

int64_t period_of(int64_t unix_s, const KeyPolicy& policy);
uint32_t key_id(const Secret& s, int64_t period);
Key derive_master_key(const Secret& s, int64_t period);

enum class CookieStatus : uint8_t {
  kOk,
  kUnknownKey,  // no secret has its tag, or its period lies in the future beyond the next
  kExpiredKey,  // its period is older than `keep` periods
  kBadCookie,   // wrong length or does not authenticate
};

// One per worker (or KE thread): derived keys cached by period, re-derived when the secrets
// change (a reload) or the period moves on. Nothing allocated after construction.
class CookieJar {
 public:
  CookieJar();
  ~CookieJar();
  CookieJar(const CookieJar&) = delete;
  CookieJar& operator=(const CookieJar&) = delete;

  // Seals the session keys into a cookie under the current period's key of secrets[0].
  void seal(const Secrets& secrets, const KeyPolicy& policy, int64_t now_s,
            const SessionKeys& keys, Random& random, std::span<uint8_t, kCookieSize> out);
  // Opens a cookie. `age` (on kOk and kExpiredKey): periods since the key was current
  // (0 current, -1 the next, 1..keep past).
  CookieStatus open(const Secrets& secrets, const KeyPolicy& policy, int64_t now_s,
                    std::span<const uint8_t> cookie, SessionKeys& out, int64_t* age = nullptr);

 private:
  struct Slot {
    uint64_t generation = 0;  // 0: empty
    int64_t period = 0;
    size_t secret = 0;
    Siv siv;
  };
  static constexpr size_t kPeriodSlots = 32;  // > kMaxKeep + 2
  const Siv& key_for(const Secrets& secrets, size_t secret, int64_t period);
  std::unique_ptr<std::array<Slot, kPeriodSlots * kMaxSecrets>> slots_;
};

}  // namespace strata::nts
