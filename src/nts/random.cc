#include "nts/random.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nettle/chacha.h>

namespace strata::nts {

bool system_random(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

Random::Random() {
  if (!system_random(key_)) std::abort();
}

Random::Random(std::span<const uint8_t, 32> seed) { std::copy(seed.begin(), seed.end(), key_.begin()); }

Random::~Random() {
  // Nothing handed out can be recomputed from what is left.
  explicit_bzero(key_.data(), key_.size());
  explicit_bzero(buffer_.data(), buffer_.size());
}

void Random::refill() {
  chacha_ctx ctx;
  chacha_set_key(&ctx, key_.data());
  static constexpr uint8_t kNonce[CHACHA_NONCE_SIZE] = {};
  chacha_set_nonce(&ctx, kNonce);
  std::array<uint8_t, 32 + sizeof(buffer_)> stream{};
  chacha_crypt(&ctx, stream.size(), stream.data(), stream.data());
  std::copy_n(stream.begin(), key_.size(), key_.begin());
  std::copy(stream.begin() + key_.size(), stream.end(), buffer_.begin());
  explicit_bzero(stream.data(), stream.size());
  explicit_bzero(&ctx, sizeof(ctx));
  used_ = 0;
}

void Random::fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    if (used_ == buffer_.size()) refill();
    const size_t n = std::min(out.size() - done, buffer_.size() - used_);
    std::memcpy(out.data() + done, buffer_.data() + used_, n);
    explicit_bzero(buffer_.data() + used_, n);  // handed out once
    used_ += n;
    done += n;
  }
}

}  // namespace strata::nts
