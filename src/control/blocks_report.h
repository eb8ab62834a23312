// The dynamic blocks over the control API ("blocks": list, add, remove) and the dashboard's
// /api/v1/blocks: the active blocks with their hits, the recent warnings, the rules.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>

#include "policy/blocks.h"

namespace strata::control {

// The list: blocks (prefix, action, reason, by: "hand" or "rule", rule, hits, since, expires,
// remaining_s, offence), warnings (the latest first), totals, the rules. `events_lost`: rule
// events the workers' rings had no room for.
nlohmann::json blocks_json(const policy::BlockBook::View& view, int64_t now_s, uint64_t events_lost);

// A control request: {"op": "list"} (the default), {"op": "add", "prefix", "for" (seconds),
// "action", "reason"}, {"op": "remove", "prefix"}. A change answers "changed": true.
nlohmann::json blocks_command(policy::BlockBook& book, const nlohmann::json& request, int64_t now_s,
                              uint64_t events_lost);

}  // namespace strata::control
