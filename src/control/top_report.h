// The control API's "top" command: merges the workers' published top-talker summaries for
// one window and reports the largest with their share of all traffic in that window and a
// "rest" line, in bounded size whatever the number of clients.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "clients/top.h"

namespace strata::control {

// Request fields: window ("1m", "1h", "1d"), by ("requests", "bytes"), prefix (bool),
// previous (bool: the last complete window instead of the current one), limit (1-512).
// Throws std::invalid_argument on bad fields.
nlohmann::json top_json(const std::vector<const clients::TopTalkers*>& workers,
                        const nlohmann::json& request, int64_t now_s);

}  // namespace strata::control
