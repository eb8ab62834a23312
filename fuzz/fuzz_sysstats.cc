// Fuzz target: `strata cost --sysstats`, the parser of pasted `ntpq -c sysstats` (NTPsec's and
// ntp.org's) or `strata stats` text, and the replies inferred from it.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/cost.h"
#include "fuzz_check.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto s = cli::parse_sysstats(text, error);
  STRATA_FUZZ_CHECK(s.has_value() == error.empty());
  if (!s) return 0;
  STRATA_FUZZ_CHECK(s->seconds > 0);
  const double with = cli::sysstats_replies(*s), without = cli::sysstats_replies_without_kod(*s);
  // Never more replies than requests, never fewer with the KoDs than without (finite input).
  if (std::isfinite(s->received) && std::isfinite(with) && std::isfinite(without) && s->received >= 0 &&
      s->kod_sent >= 0) {
    STRATA_FUZZ_CHECK(with <= s->received);
    STRATA_FUZZ_CHECK(without >= 0);
    STRATA_FUZZ_CHECK(with >= std::min(without, s->received));
  }
  return 0;
}
