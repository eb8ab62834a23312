// Steering by source address: a classic BPF program attached to a SO_REUSEPORT group picks
// the socket (so the worker) from a hash of the request's source prefix instead of the
// kernel's 4-tuple hash. NTP clients change source port on every request (RFC 9109); with
// steering, every request of one client, and of one rate-limit prefix, reaches the same
// worker, so that worker's client table and limiter see all of them, with no state shared
// between cores.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/net.h"

namespace strata::io {

// The program for a group of `sockets` sockets of `family`, hashing the first `prefix_bits`
// bits of the source address (IPv4: 0-32, IPv6: 0-128).
std::vector<sock_filter> steering_program(base::Family family, int prefix_bits, uint32_t sockets);

// The socket index the program picks for `source` (the same arithmetic, for tests).
uint32_t steering_index(const base::IpAddress& source, int prefix_bits, uint32_t sockets);

// Attaches the program to the reuseport group of `fd` (any member). The group's sockets
// must have been bound in worker order. Empty string on success, else the reason.
std::string attach_steering(int fd, base::Family family, int prefix_bits, uint32_t sockets);

}  // namespace strata::io
