#include "nts/cookies.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nettle/hkdf.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>

#include "base/bytes.h"

namespace strata::nts {
namespace {

std::atomic<uint64_t> g_generation{0};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// SHA-256 of a label and the secret: what may be shown of a secret (its tag, its fingerprint).
std::array<uint8_t, SHA256_DIGEST_SIZE> labelled_hash(std::string_view label, const Secret& s) {
  sha256_ctx h;
  sha256_init(&h);
  sha256_update(&h, label.size(), reinterpret_cast<const uint8_t*>(label.data()));
  sha256_update(&h, s.bytes.size(), s.bytes.data());
  std::array<uint8_t, SHA256_DIGEST_SIZE> d{};
  sha256_digest(&h, d.size(), d.data());
  return d;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Secret make_secret(std::span<const uint8_t, kSecretSize> bytes) {
  Secret s;
  std::copy(bytes.begin(), bytes.end(), s.bytes.begin());
  // The tag is not secret: the first octet of a hash of the secret under its own label.
  s.tag = labelled_hash("strata-nts-secret-tag", s)[0];
  return s;
}

std::string format_secret(const Secret& s) {
  std::string out;
  for (uint8_t b : s.bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string fingerprint(const Secret& s) {
  const auto d = labelled_hash("strata-nts-secret-fingerprint", s);
  return fmt::format("{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3]);
}

SecretsResult parse_secrets(std::string_view text, const std::string& name) {
  SecretsResult r;
  auto secrets = std::make_shared<Secrets>();
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    if (line.size() != 2 * kSecretSize) {
      r.error = fmt::format("{}:{}: a secret is {} hex digits, this line has {} characters",
                            name, line_no, 2 * kSecretSize, line.size());
      return r;
    }
    std::array<uint8_t, kSecretSize> bytes{};
    for (size_t i = 0; i < kSecretSize; ++i) {
      const int hi = hex_value(line[2 * i]);
      const int lo = hex_value(line[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        r.error = fmt::format("{}:{}: not a hex digit at column {}", name, line_no,
                              2 * i + (hi < 0 ? 1 : 2));
        return r;
      }
      bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (secrets->secrets.size() == kMaxSecrets) {
      r.error = fmt::format("{}:{}: at most {} secrets (one sealing, the others only opening)",
                            name, line_no, kMaxSecrets);
      return r;
    }
    for (const Secret& s : secrets->secrets) {
      if (s.bytes == bytes) {
        r.error = fmt::format("{}:{}: the same secret twice", name, line_no);
        return r;
      }
    }
    secrets->secrets.push_back(make_secret(bytes));
    explicit_bzero(bytes.data(), bytes.size());
  }
  if (secrets->secrets.empty()) {
    r.error = fmt::format("{}: no secret in the file", name);
    return r;
  }
  secrets->generation = ++g_generation;
  r.secrets = std::move(secrets);
  return r;
}

SecretsResult load_secrets(const std::string& path, bool create) {
  SecretsResult r;
  bool created = false;
  if (create && ::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    std::array<uint8_t, kSecretSize> bytes{};
    if (!system_random(bytes)) {
      r.error = fmt::format("{}: getrandom: {}", path, std::strerror(errno));
      return r;
    }
    const std::string text =
        fmt::format("# NTS cookie secret, made by stratad. Keep it secret; give the same file to "
                    "every server\n# that should accept the others' cookies (docs/nts.md).\n{}\n",
                    format_secret(make_secret(bytes)));
    explicit_bzero(bytes.data(), bytes.size());
    const std::string tmp = path + ".new";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      r.error = fmt::format("{}: cannot create: {}", tmp, std::strerror(errno));
      return r;
    }
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    // link(2) rather than rename(2): it never replaces a file another process made meanwhile.
    if (!ok || ::link(tmp.c_str(), path.c_str()) != 0) {
      const int e = ok ? errno : saved;
      ::unlink(tmp.c_str());
      if (!(ok && e == EEXIST)) {
        r.error = fmt::format("{}: cannot write: {}", path, std::strerror(e));
        return r;
      }
    } else {
      ::unlink(tmp.c_str());
      created = true;
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    r.error = fmt::format("{}: {}", path, std::strerror(errno));
    return r;
  }
  struct stat st{};
  // Group access is allowed (root:stratad 0640 is a common way to give a service a secret);
  // access for everyone is not.
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0007) != 0) {
    r.error = fmt::format("{}: open to every user (mode {:04o}); chmod 600 it (or 640 with stratad's group)",
                          path, st.st_mode & 07777);
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  r = parse_secrets(text.str(), path);
  r.created = created;
  return r;
}

int64_t period_of(int64_t unix_s, const KeyPolicy& policy) {
  const int64_t p = policy.rotate_s > 0 ? policy.rotate_s : 86400;
  return unix_s >= 0 ? unix_s / p : -((-unix_s + p - 1) / p);
}

uint32_t key_id(const Secret& s, int64_t period) {
  return static_cast<uint32_t>(s.tag) << 24 | (static_cast<uint32_t>(period) & 0xFFFFFFu);
}

Key derive_master_key(const Secret& s, int64_t period) {
  static constexpr std::string_view kInfo = "strata-nts-cookie-v1";
  uint8_t salt[8];
  base::store_be64(salt, static_cast<uint64_t>(period));
  hmac_sha256_ctx mac;
  hmac_sha256_set_key(&mac, sizeof(salt), salt);
  std::array<uint8_t, SHA256_DIGEST_SIZE> prk{};
  hkdf_extract(&mac, reinterpret_cast<nettle_hash_update_func*>(hmac_sha256_update),
               reinterpret_cast<nettle_hash_digest_func*>(hmac_sha256_digest), SHA256_DIGEST_SIZE,
               s.bytes.size(), s.bytes.data(), prk.data());
  hmac_sha256_set_key(&mac, prk.size(), prk.data());
  Key k{};
  hkdf_expand(&mac, reinterpret_cast<nettle_hash_update_func*>(hmac_sha256_update),
              reinterpret_cast<nettle_hash_digest_func*>(hmac_sha256_digest), SHA256_DIGEST_SIZE,
              kInfo.size(), reinterpret_cast<const uint8_t*>(kInfo.data()), k.size(), k.data());
  explicit_bzero(prk.data(), prk.size());
  explicit_bzero(&mac, sizeof(mac));
  return k;
}

CookieJar::CookieJar() : slots_(std::make_unique<std::array<Slot, kPeriodSlots * kMaxSecrets>>()) {}

CookieJar::~CookieJar() { explicit_bzero(slots_->data(), sizeof(*slots_)); }

const Siv& CookieJar::key_for(const Secrets& secrets, size_t secret, int64_t period) {
  Slot& slot = (*slots_)[secret * kPeriodSlots + static_cast<uint64_t>(period) % kPeriodSlots];
  if (slot.generation != secrets.generation || slot.period != period || slot.secret != secret) {
    Key k = derive_master_key(secrets.secrets[secret], period);
    slot.siv.set_key(k);
    explicit_bzero(k.data(), k.size());
    slot.generation = secrets.generation;
    slot.period = period;
    slot.secret = secret;
  }
  return slot.siv;
}

void CookieJar::seal(const Secrets& secrets, const KeyPolicy& policy, int64_t now_s,
                     const SessionKeys& keys, Random& random, std::span<uint8_t, kCookieSize> out) {
  const int64_t period = period_of(now_s, policy);
  const uint32_t id = key_id(secrets.secrets[0], period);
  base::store_be32(out.data(), id);
  random.fill(out.subspan(4, kCookieNonceSize));
  uint8_t* plain = out.data() + 4 + kCookieNonceSize + kTagSize;
  std::memcpy(plain, keys.c2s.data(), kKeySize);
  std::memcpy(plain + kKeySize, keys.s2c.data(), kKeySize);
  key_for(secrets, 0, period)
      .seal(out.subspan(4, kCookieNonceSize), out.first(4), {plain, 2 * kKeySize},
            out.data() + 4 + kCookieNonceSize);
}

CookieStatus CookieJar::open(const Secrets& secrets, const KeyPolicy& policy, int64_t now_s,
                             std::span<const uint8_t> cookie, SessionKeys& out, int64_t* age) {
  if (cookie.size() != kCookieSize) return CookieStatus::kBadCookie;
  const uint32_t id = base::load_be32(cookie.data());
  const int64_t current = period_of(now_s, policy);
  // The period nearest the current one with the id's low 24 bits.
  const int64_t delta =
      static_cast<int64_t>(((id & 0xFFFFFFu) - (static_cast<uint32_t>(current) & 0xFFFFFFu) +
                            0x800000u) & 0xFFFFFFu) - 0x800000;
  const int64_t period = current + delta;
  bool tagged = false;
  for (size_t i = 0; i < secrets.secrets.size(); ++i) {
    if (secrets.secrets[i].tag != id >> 24) continue;
    tagged = true;
    if (delta > 1) return CookieStatus::kUnknownKey;
    if (age != nullptr) *age = -delta;
    if (-delta > policy.keep) return CookieStatus::kExpiredKey;
    uint8_t plain[2 * kKeySize];
    const bool ok = key_for(secrets, i, period)
                        .open(cookie.subspan(4, kCookieNonceSize), cookie.first(4),
                              cookie.subspan(4 + kCookieNonceSize), plain);
    if (ok) {
      std::memcpy(out.c2s.data(), plain, kKeySize);
      std::memcpy(out.s2c.data(), plain + kKeySize, kKeySize);
    }
    explicit_bzero(plain, sizeof(plain));
    if (ok) return CookieStatus::kOk;
    // Two secrets may share a tag (1 in 256): try the others.
  }
  return tagged ? CookieStatus::kBadCookie : CookieStatus::kUnknownKey;
}

}  // namespace strata::nts
