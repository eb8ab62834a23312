// Name resolution for the CLI: HOST[:PORT] -> endpoints, with an optional family filter.
// CLI only (blocking getaddrinfo is fine there, never in the daemon's packet path).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/net.h"

namespace strata::cli {

enum class FamilyFilter { kAny, kV4, kV6 };

// HOST, HOST:PORT, [V6] or [V6]:PORT -> the host (without brackets, not resolved: a name
// stays a name, as certificate checks need it) and the port. Throws std::invalid_argument.
std::pair<std::string, uint16_t> split_host_port(const std::string& text, uint16_t default_port);

// Throws std::runtime_error with a readable message when the name does not resolve.
std::vector<base::Endpoint> resolve(const std::string& host_port, uint16_t default_port,
                                    FamilyFilter filter);

}  // namespace strata::cli
