// The control API's "kod-effect" command: did the clients that got a KoD RATE slow down?
// For each client's first KoD (clients/kod_watch.h): its request rate before (from its first
// request to the KoD) and after (from the KoD to now, from its client record); a client is
// judged once min_age seconds have passed, and "slowed" when its rate at least halved.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "clients/tracker.h"

namespace strata::control {

nlohmann::json kod_effect_json(const std::vector<const clients::Tracker*>& trackers,
                               int64_t now_ns, double min_age_s, size_t limit);

}  // namespace strata::control
