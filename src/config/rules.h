// The reloadable part of a configuration as the packet path uses it: access rules, rate
// limits and keys in one server::Rules. stratad builds one at start and at each reload;
// `strata analyze --policy` builds one to replay a capture through.
#pragma once

#include <memory>

#include "config/config.h"
#include "server/rules.h"

namespace strata::config {

std::unique_ptr<server::Rules> make_rules(const Config& config);

}  // namespace strata::config
