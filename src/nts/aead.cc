#include "nts/aead.h"

namespace strata::nts {

void Siv::set_key(std::span<const uint8_t, kKeySize> key) {
  siv_cmac_aes128_set_key(&ctx_, key.data());
}

// nettle computes the tag over the whole plaintext before it writes anything, writes the tag
// at `out` and then runs CTR from the plaintext to out + 16: with the plaintext at out + 16
// that is CTR in place, which nettle supports (tested in aead_test.cc).
void Siv::seal(std::span<const uint8_t> nonce, std::span<const uint8_t> ad,
               std::span<const uint8_t> plaintext, uint8_t* out) const {
  siv_cmac_aes128_encrypt_message(&ctx_, nonce.size(), nonce.data(), ad.size(), ad.data(),
                                  plaintext.size() + kTagSize, out, plaintext.data());
}

bool Siv::open(std::span<const uint8_t> nonce, std::span<const uint8_t> ad,
               std::span<const uint8_t> sealed, uint8_t* out) const {
  if (nonce.empty() || sealed.size() < kTagSize) return false;
  return siv_cmac_aes128_decrypt_message(&ctx_, nonce.size(), nonce.data(), ad.size(),
                                         ad.data(), sealed.size() - kTagSize, out,
                                         sealed.data()) != 0;
}

}  // namespace strata::nts
