// AEAD_AES_SIV_CMAC_256 (RFC 5297, AEAD id 15 in RFC 8915): the one NTS AEAD, for the packet
// path's authenticators and for cookies. A thin layer over nettle's siv_cmac_aes128 (the
// "256" is the key size: two AES-128 keys): its context is a plain struct, so a worker keeps
// its own and re-keys it per request without allocating. Output layout as NTS uses it: the
// 16-octet tag (the synthetic IV) in front of the ciphertext.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include <nettle/siv-cmac.h>

namespace strata::nts {

inline constexpr size_t kKeySize = 32;  // SIV_CMAC_AES128_KEY_SIZE
inline constexpr size_t kTagSize = 16;  // SIV_DIGEST_SIZE
using Key = std::array<uint8_t, kKeySize>;

class Siv {
 public:
  Siv() = default;
  explicit Siv(std::span<const uint8_t, kKeySize> key) { set_key(key); }
  void set_key(std::span<const uint8_t, kKeySize> key);

  // Writes tag || ciphertext of `plaintext` (plaintext.size() + kTagSize octets) at `out`.
  // `nonce` must not be empty. In place is allowed with the plaintext already where the
  // ciphertext goes: out + kTagSize == plaintext.data().
  void seal(std::span<const uint8_t> nonce, std::span<const uint8_t> ad,
            std::span<const uint8_t> plaintext, uint8_t* out) const;

  // Checks and decrypts `sealed` (tag || ciphertext, at least kTagSize octets) into `out`
  // (sealed.size() - kTagSize octets, not overlapping `sealed`). False when it does not
  // authenticate (what `out` holds then is garbage) or `nonce` is empty.
  bool open(std::span<const uint8_t> nonce, std::span<const uint8_t> ad,
            std::span<const uint8_t> sealed, uint8_t* out) const;

 private:
  siv_cmac_aes128_ctx ctx_{};
};

}  // namespace strata::nts
