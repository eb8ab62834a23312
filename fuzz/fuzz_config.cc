// Fuzz target: the configuration parser (TOML text -> validated Config or located errors).
#include <cstdint>
#include <string_view>

#include "config/changes.h"
#include "config/config.h"
#include "fuzz_check.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const config::LoadResult r = config::parse_config(text, "fuzz.toml");
  STRATA_FUZZ_CHECK(r.config.has_value() == r.errors.empty());
  if (r.config) {
    STRATA_FUZZ_CHECK(!r.config->server.listen.empty());
    STRATA_FUZZ_CHECK(r.config->time.stratum >= 1 && r.config->time.stratum <= 15);
    // A reload of the same file changes nothing; against the defaults, one line per rule.
    STRATA_FUZZ_CHECK(config::reload_changes(*r.config, *r.config).empty());
    STRATA_FUZZ_CHECK(config::reload_changes(config::default_config(), *r.config).size() >=
                      r.config->access.rules.size());
  }
  for (const auto& e : r.errors) STRATA_FUZZ_CHECK(!e.reason.empty() && e.line >= 0);
  return 0;
}
