// Random octets for the packet path's nonces and cookies, without a syscall per packet:
// ChaCha20 keystream from a key drawn with getrandom(2), with fast key erasure (each refill
// takes its next key from the keystream, so a later memory read reveals nothing already
// handed out), 512 octets per refill. One per worker or KE thread; not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace strata::nts {

class Random {
 public:
  Random();  // seeded from getrandom(2); aborts if the kernel has none to give
  explicit Random(std::span<const uint8_t, 32> seed);  // deterministic, for tests
  ~Random();
  Random(const Random&) = delete;
  Random& operator=(const Random&) = delete;

  void fill(std::span<uint8_t> out);

 private:
  void refill();
  std::array<uint8_t, 32> key_{};
  std::array<uint8_t, 512> buffer_{};
  size_t used_ = sizeof(buffer_);
};

// Fills `out` from getrandom(2). False if the kernel fails (it blocks until seeded).
bool system_random(std::span<uint8_t> out);

}  // namespace strata::nts
