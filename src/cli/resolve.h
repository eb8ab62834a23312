// Name resolution for the CLI: HOST[:PORT] -> endpoints, with an optional family filter.
// CLI only (blocking getaddrinfo is fine there, never in the daemon's packet path).
#pragma once

#include <string>
#include <vector>

#include "base/net.h"

namespace strata::cli {

enum class FamilyFilter { kAny, kV4, kV6 };

// Throws std::runtime_error with a readable message when the name does not resolve.
std::vector<base::Endpoint> resolve(const std::string& host_port, uint16_t default_port,
                                    FamilyFilter filter);

}  // namespace strata::cli
