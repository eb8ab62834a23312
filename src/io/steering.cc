// Source-prefix steering for SO_REUSEPORT groups (see steering.h).
#include "io/steering.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace strata::io {

namespace {

constexpr uint32_t kMultiplier = 0x9E3779B1u;  // 2^32 / golden ratio

// Mask of the bits of 32-bit word `word` (0 = most significant word) kept by a prefix.
uint32_t word_mask(int prefix_bits, int word) {
  const int bits = prefix_bits - 32 * word;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffffu;
  return ~uint32_t{0} << (32 - bits);
}

}  // namespace

std::vector<sock_filter> steering_program(base::Family family, int prefix_bits, uint32_t sockets) {
  // The network header is reached through SKF_NET_OFF: the program itself sees the UDP
  // payload. Source address: IPv4 header octet 12, IPv6 header octet 8 (four words).
  const bool v4 = family == base::Family::kV4;
  const int words = v4 ? 1 : 4;
  const uint32_t base = static_cast<uint32_t>(SKF_NET_OFF) + (v4 ? 12u : 8u);
  std::vector<sock_filter> p;
  // X holds the running hash, h = (h ^ (word & mask)) * K per word.
  p.push_back(BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0));
  for (int w = 0; w < words; ++w) {
    const uint32_t mask = word_mask(prefix_bits, w);
    if (mask == 0) break;
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, base + 4u * static_cast<uint32_t>(w)));
    if (mask != 0xffffffffu) p.push_back(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, mask));
    p.push_back(BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0));
    p.push_back(BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, kMultiplier));
    p.push_back(BPF_STMT(BPF_MISC | BPF_TAX, 0));
  }
  // Fold the high half down (the multiplication moves entropy up), then pick a socket.
  p.push_back(BPF_STMT(BPF_MISC | BPF_TXA, 0));
  p.push_back(BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16));
  p.push_back(BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0));
  p.push_back(BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, sockets));
  p.push_back(BPF_STMT(BPF_RET | BPF_A, 0));
  return p;
}

uint32_t steering_index(const base::IpAddress& source, int prefix_bits, uint32_t sockets) {
  const bool v4 = source.family == base::Family::kV4;
  const int words = v4 ? 1 : 4;
  uint32_t h = 0;
  for (int w = 0; w < words; ++w) {
    const uint32_t mask = word_mask(prefix_bits, w);
    if (mask == 0) break;
    const uint8_t* b = source.bytes.data() + 4 * w;
    const uint32_t word = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
    h = ((word & mask) ^ h) * kMultiplier;
  }
  return ((h >> 16) ^ h) % sockets;
}

std::string attach_steering(int fd, base::Family family, int prefix_bits, uint32_t sockets) {
  std::vector<sock_filter> code = steering_program(family, prefix_bits, sockets);
  sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0)
    return std::string("SO_ATTACH_REUSEPORT_CBPF: ") + std::strerror(errno);
  return "";
}

}  // namespace strata::io
