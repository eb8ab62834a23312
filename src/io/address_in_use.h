// Refusing to share a listen address: SO_REUSEPORT lets a second stratad (or any process of
// the same user) join the first one's group without an error, and the kernel would then
// split the clients between two servers that know nothing of each other. Called by stratad's
// main before it binds, on the main thread.
#pragma once

#include <string>

#include "base/net.h"
#include "io/udp_backend.h"

namespace strata::io {

// Binds a probe socket to `address` *without* SO_REUSEPORT (as the listen sockets would be
// bound, IPv6 only, with freebind when asked). Empty when the address is free; else why not,
// naming the process that holds it when /proc tells ("127.0.0.1:123 is already in use by
// pid 812 (chronyd, uid 0)").
std::string check_address_free(const base::Endpoint& address, const SocketOptions& options);

// Who holds UDP `address` (or a wildcard on its port) according to /proc/net/udp{,6} and
// /proc/*/fd: "pid 812 (chronyd, uid 0)", "a socket of uid 107 (inode 4711)", or "".
std::string describe_udp_owner(const base::Endpoint& address);

}  // namespace strata::io
