// Fuzz target: the console's parsers. The first octet picks one: 0, the history file
// (stats/history.h) with a valid checksum appended, so that the fuzzer gets past it to the
// lengths and names; 1, the history file as it is; 2, `strata history`'s times (--since);
// 3, [metrics] api_key hashes. Invariants: nothing crashes; a history that parses serializes
// to a file that parses again to the same bytes; a time before now is within a century of it.
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "fuzz_check.h"
#include "stats/history.h"
#include "web/api.h"

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0:
    case 1: {
      std::string file(rest);
      if (data[0] % 4 == 0) {
        const uint64_t sum = stats::history_checksum(file);
        file.append(reinterpret_cast<const char*>(&sum), sizeof sum);
      }
      stats::History h;
      std::string error;
      if (h.parse(file, error)) {
        const std::string again = h.serialize();
        stats::History h2;
        STRATA_FUZZ_CHECK(h2.parse(again, error));
        STRATA_FUZZ_CHECK(h2.serialize() == again);
      } else {
        STRATA_FUZZ_CHECK(!error.empty());
      }
      break;
    }
    case 2: {
      const int64_t now = 1'796'083'200;
      const auto t = cli::parse_when(rest, now);
      // A length of time before now is never after it, nor more than a century before.
      if (t && !rest.empty() && std::string_view("smhd").find(rest.back()) != std::string_view::npos &&
          rest.find_first_not_of("-0123456789smhd") == std::string_view::npos)
        STRATA_FUZZ_CHECK(*t <= now && *t >= now - 101 * 366 * 86400LL);
      break;
    }
    case 3:
      (void)web::parse_key_hash(rest);
      break;
  }
  return 0;
}
