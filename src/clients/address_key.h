// Addresses and prefixes as fixed 16-octet keys for the client table and the rate limiter:
// IPv6 as is, IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d), so one table holds both
// families. A prefix key is the address with the bits past the prefix length cleared; the
// family stays recoverable because the mapped form's first 96 bits are fixed.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#include "base/net.h"

namespace strata::clients {

struct AddressKey {
  std::array<uint8_t, 16> bytes{};

  static AddressKey from(const base::IpAddress& a) {
    AddressKey k;
    if constexpr (std::endian::native == std::endian::little) {
      if (a.family == base::Family::kV4) {  // two 8-octet stores: read back whole, at once
        uint32_t v4;
        std::memcpy(&v4, a.bytes.data(), 4);
        const uint64_t lo = 0, hi = uint64_t{v4} << 32 | uint64_t{0xffff} << 16;  // 0 0 ff ff a b c d
        std::memcpy(k.bytes.data(), &lo, 8);
        std::memcpy(k.bytes.data() + 8, &hi, 8);
        return k;
      }
    }
    if (a.family == base::Family::kV4) {
      k.bytes[10] = 0xff;
      k.bytes[11] = 0xff;
      std::memcpy(&k.bytes[12], a.bytes.data(), 4);
    } else {
      k.bytes = a.bytes;
    }
    return k;
  }

  bool is_v4() const {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes.data(), kMapped, 12) == 0;
  }

  base::IpAddress address() const {
    base::IpAddress a;
    if (is_v4()) {
      a.family = base::Family::kV4;
      std::memcpy(a.bytes.data(), &bytes[12], 4);
    } else {
      a.family = base::Family::kV6;
      a.bytes = bytes;
    }
    return a;
  }

  // The key of the prefix of length `v4_bits` (IPv4) or `v6_bits` (IPv6) holding this address.
  // Two 8-octet masks, not a loop over the octets: it runs several times per request.
  AddressKey prefix(int v4_bits, int v6_bits) const {
    const int keep = std::clamp(is_v4() ? 96 + v4_bits : v6_bits, 0, 128);
    // A mask of the first `bits` bits of 8 octets in network order, as stored in memory.
    auto mask = [](int bits) -> uint64_t {
      if (bits <= 0) return 0;
      const uint64_t m = bits >= 64 ? ~uint64_t{0} : ~(~uint64_t{0} >> bits);
      return std::endian::native == std::endian::little ? __builtin_bswap64(m) : m;
    };
    const uint64_t lo_v = lo() & mask(keep), hi_v = hi() & mask(keep - 64);
    AddressKey k;
    std::memcpy(k.bytes.data(), &lo_v, 8);
    std::memcpy(k.bytes.data() + 8, &hi_v, 8);
    return k;
  }

  uint64_t lo() const {
    uint64_t v;
    std::memcpy(&v, bytes.data(), 8);
    return v;
  }
  uint64_t hi() const {
    uint64_t v;
    std::memcpy(&v, bytes.data() + 8, 8);
    return v;
  }

  // Two 8-octet compares, not a memcmp call: keys are compared on every request.
  friend bool operator==(const AddressKey& a, const AddressKey& b) {
    return a.lo() == b.lo() && a.hi() == b.hi();
  }
  friend bool operator<(const AddressKey& a, const AddressKey& b) { return a.bytes < b.bytes; }
};

// Keyed hash of an address key: `seed` is random per process, so no sender can pick
// addresses that all fall into one hash chain.
inline uint64_t hash_key(const AddressKey& k, uint64_t seed) {
  auto mix = [](uint64_t x) {  // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  return mix(k.lo() ^ seed) ^ mix(k.hi() + 0x9e3779b97f4a7c15ULL * (seed | 1));
}

}  // namespace strata::clients
