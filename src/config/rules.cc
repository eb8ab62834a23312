// Rules from a configuration (see rules.h).
#include "config/rules.h"

namespace strata::config {

std::unique_ptr<server::Rules> make_rules(const Config& c) {
  auto rules = std::make_unique<server::Rules>();
  rules->policy = compile_access(c);
  rules->limits = c.ratelimit;
  rules->keys = auth::KeyRing(c.auth.keys);
  rules->bad_mac = c.auth.bad_mac;
  rules->control_key = c.auth.control_key;
  rules->nts_keys = c.nts.keys;  // the secrets themselves are read by stratad (a file it may create)
  return rules;
}

}  // namespace strata::config
