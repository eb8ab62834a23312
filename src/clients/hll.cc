// HyperLogLog (see hll.h).
#include "clients/hll.h"

#include <cmath>
#include <limits>

namespace strata::clients {

namespace {

// Ertl 2017, algorithm 6 helpers.
double sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1, z = x, previous;
  do {
    x *= x;
    previous = z;
    z += x * y;
    y += y;
  } while (z != previous);
  return z;
}

double tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1, z = 1 - x, previous;
  do {
    x = std::sqrt(x);
    previous = z;
    y *= 0.5;
    z -= (1 - x) * (1 - x) * y;
  } while (z != previous);
  return z / 3;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

uint64_t hash_for_sketch(uint64_t lo, uint64_t hi) {
  // splitmix64's finaliser over both halves with fixed constants: part of the sketch file
  // format ("hash": "strata-splitmix-1"); changing it makes old sketches unmergeable.
  auto mix = [](uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  return mix(lo ^ 0x5354524154413031ULL) ^ mix(hi + 0x9e3779b97f4a7c15ULL);
}

void Hll::merge(const Hll& other) {
  for (size_t i = 0; i < kRegisters; ++i)
    if (other.registers_[i] > registers_[i]) registers_[i] = other.registers_[i];
}

void Hll::copy_from(const Hll& other) {
  for (size_t i = 0; i < kRegisters; ++i)
    registers_[i] = std::atomic_ref<uint8_t>(const_cast<uint8_t&>(other.registers_[i]))
                        .load(std::memory_order_relaxed);
}

void Hll::clear() {
  for (auto& r : registers_) std::atomic_ref<uint8_t>(r).store(0, std::memory_order_relaxed);
}

bool Hll::empty() const {
  for (uint8_t r : registers_)
    if (r != 0) return false;
  return true;
}

double Hll::estimate() const {
  // Ertl's improved raw estimator (algorithm 6) from the histogram of register values.
  constexpr int q = 64 - kPrecision;
  std::array<uint32_t, q + 2> c{};
  for (uint8_t r : registers_) ++c[r > q + 1 ? q + 1 : r];
  const double m = static_cast<double>(kRegisters);
  double z = m * tau(1 - c[q + 1] / m);
  for (int k = q; k >= 1; --k) z = 0.5 * (z + c[static_cast<size_t>(k)]);
  z += m * sigma(c[0] / m);
  constexpr double alpha_inf = 0.721347520444481703680;  // 1 / (2 ln 2)
  return alpha_inf * m * m / z;
}

std::string Hll::to_base64() const {
  std::string out;
  out.reserve((kRegisters + 2) / 3 * 4);
  for (size_t i = 0; i < kRegisters; i += 3) {
    const uint32_t b0 = registers_[i];
    const uint32_t b1 = i + 1 < kRegisters ? registers_[i + 1] : 0;
    const uint32_t b2 = i + 2 < kRegisters ? registers_[i + 2] : 0;
    const uint32_t v = b0 << 16 | b1 << 8 | b2;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < kRegisters ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < kRegisters ? kAlphabet[v & 63] : '=';
  }
  return out;
}

bool Hll::from_base64(std::string_view text) {
  if (text.size() != (kRegisters + 2) / 3 * 4) return false;
  std::array<uint8_t, kRegisters> r{};
  size_t n = 0;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char ch = text[i + k];
      int d = 0;
      if (ch == '=') {
        ++pad;
      } else {
        d = decode_char(ch);
        if (d < 0 || pad > 0) return false;
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    const uint8_t bytes[3] = {static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                              static_cast<uint8_t>(v)};
    for (int k = 0; k < 3 - pad && n < kRegisters; ++k) r[n++] = bytes[k];
  }
  if (n != kRegisters) return false;
  for (uint8_t x : r)
    if (x > kMaxRank) return false;
  registers_ = r;
  return true;
}

}  // namespace strata::clients
