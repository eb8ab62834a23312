// The control API's "top" command: merges the workers' published top-talker summaries for
// one window and reports the largest with their share of all traffic in that window and a
// "rest" line, in bounded size whatever the number of clients.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "clients/top.h"
#include "policy/networks.h"

namespace strata::control {

// Request fields: window ("1m", "1h", "1d"), by ("requests", "bytes"), prefix (bool),
// previous (bool: the last complete window instead of the current one), limit (1-512).
// Throws std::invalid_argument on bad fields.
nlohmann::json top_json(const std::vector<const clients::TopTalkers*>& workers,
                        const nlohmann::json& request, int64_t now_s);

// Top networks: the window's heaviest prefixes (IPv4 /24, IPv6 /48: the Space-Saving
// summaries by requests) grouped by the network or the country `networks` puts each in (by
// the prefix's first address: a network narrower than the prefix counts for the prefix only
// when it holds that address).
// Request fields: window, previous, limit as top_json's, and group ("network" or "country").
// What the summaries do not hold (the long tail of light prefixes) is the "rest", never
// attributed to a network. Throws std::invalid_argument on bad fields.
nlohmann::json top_networks_json(const std::vector<const clients::TopTalkers*>& workers,
                                 const nlohmann::json& request, int64_t now_s, const policy::NetworkDb& networks);

}  // namespace strata::control
